"""The loader refuses broken catalog files with the file, entry and field named, and loads nothing half-way."""
from __future__ import annotations

from pathlib import Path

import pytest

from pbx_codes.catalog import CatalogError, load_catalogs, parse_file, validate_file

GOOD = '''
id = "acme"
title = "ACME trunk"
source = "test"
original_lang = "en"
code_space = "sip"
class_scheme = "none"
fallback = "sip"

[[entry]]
code = "503"
phrase = "Out of lines"
category = "capacity"
retry = "failover"
[entry.text]
uk = "Немає вільних ліній."
ru = "Нет свободных линий."
en = "No free lines."
'''


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_catalogs_all_load_with_their_fallbacks(catalogs) -> None:
    assert {"sip", "q850", "lifecell", "callback", "sipcall", "mango", "voipnow"} <= set(catalogs.ids())
    for catalog in catalogs:
        assert catalog.entries, catalog.id
        if catalog.fallback:
            assert catalog.fallback in catalogs


def test_every_shipped_entry_reads_in_uk_ru_and_en(catalogs) -> None:
    for catalog in catalogs:
        for entry in catalog.entries:
            assert all(entry.texts[lang].strip() for lang in ("uk", "ru", "en")), (catalog.id, entry.code)
            assert entry.original_text == entry.texts[entry.original_lang]


def test_user_directory_adds_a_catalog(tmp_path: Path) -> None:
    write(tmp_path, "acme.toml", GOOD)
    loaded = load_catalogs([tmp_path])
    assert loaded["acme"].lookup("503")[0].category.value == "capacity"


@pytest.mark.parametrize("broken, entry, field", [
    (GOOD.replace('category = "capacity"', 'category = "overload"'), "#1 (code '503')", "category"),
    (GOOD.replace('retry = "failover"\n', ''), "#1 (code '503')", "retry"),
    (GOOD.replace('ru = "Нет свободных линий."\n', ''), "#1 (code '503')", "text.ru"),
    (GOOD.replace('code = "503"', 'code = 503'), "#1", "code"),
    (GOOD.replace('phrase = ', 'phrse = '), "#1 (code '503')", "phrse"),
    (GOOD.replace('[[entry]]', '[[entry]]\nq850 = 300'), "#1 (code '503')", "q850"),
])
def test_broken_entry_is_named_with_file_entry_and_field(tmp_path: Path, broken: str, entry: str, field: str) -> None:
    path = write(tmp_path, "acme.toml", broken)
    with pytest.raises(CatalogError) as info:
        parse_file(path)
    assert info.value.path == str(path)
    assert info.value.entry == entry
    assert info.value.field_name == field
    assert str(path) in str(info.value) and field in str(info.value)


def test_duplicate_entries_are_refused(tmp_path: Path) -> None:
    text = GOOD + GOOD[GOOD.index("[[entry]]"):]
    with pytest.raises(CatalogError, match="duplicates entry #1"):
        parse_file(write(tmp_path, "acme.toml", text))


def test_not_toml_and_not_utf8_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not valid TOML"):
        parse_file(write(tmp_path, "a.toml", "id = ["))
    bad = tmp_path / "b.toml"
    bad.write_bytes(b'id = "\xff"')
    with pytest.raises(CatalogError, match="not UTF-8"):
        parse_file(bad)


def test_one_broken_file_loads_nothing_from_the_directory(tmp_path: Path) -> None:
    write(tmp_path, "acme.toml", GOOD)
    write(tmp_path, "zeta.toml", GOOD.replace('"acme"', '"zeta"').replace('retry = "failover"', 'retry = "soon"'))
    with pytest.raises(CatalogError, match=r"zeta.toml"):
        load_catalogs([tmp_path])


def test_unknown_fallback_and_duplicate_id_are_refused(tmp_path: Path, catalogs) -> None:
    path = write(tmp_path, "acme.toml", GOOD.replace('fallback = "sip"', 'fallback = "nope"'))
    with pytest.raises(CatalogError, match=r"'nope', which is not loaded"):
        validate_file(path, against=catalogs)
    write(tmp_path, "acme.toml", GOOD.replace('"acme"', '"lifecell"'))
    with pytest.raises(CatalogError, match="already loaded"):
        load_catalogs([tmp_path])


def test_class_table_must_point_to_an_entry(tmp_path: Path) -> None:
    text = GOOD.replace('fallback = "sip"', 'fallback = "sip"\n[classes]\n"5xx" = "500"')
    with pytest.raises(CatalogError, match=r"classes.5xx"):
        parse_file(write(tmp_path, "acme.toml", text))


# ---- hostile files: every refusal names the file, nothing hangs, nothing unbounded is read -----------------

def test_deeply_nested_arrays_are_refused_with_the_file_named(tmp_path: Path) -> None:
    write(tmp_path, "deep.toml", GOOD + "x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(CatalogError, match=r"deep.toml"):
        load_catalogs([tmp_path])


def test_an_integer_of_thousands_of_digits_is_refused_with_the_file_named(tmp_path: Path) -> None:
    path = write(tmp_path, "huge.toml", GOOD.replace('code = "503"', "code = " + "9" * 5000))
    with pytest.raises(CatalogError, match=r"huge.toml"):
        parse_file(path)


def test_a_fifo_named_like_a_catalog_is_refused_without_waiting(tmp_path: Path) -> None:
    import os
    os.mkfifo(tmp_path / "x.toml")      # nobody ever writes: reading it would block for ever
    with pytest.raises(CatalogError, match=r"x.toml.*not a regular file"):
        load_catalogs([tmp_path])


def test_a_directory_named_like_a_catalog_is_refused(tmp_path: Path) -> None:
    (tmp_path / "sub.toml").mkdir()
    with pytest.raises(CatalogError, match=r"sub.toml.*not a regular file"):
        load_catalogs([tmp_path])


def test_a_catalog_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    from pbx_codes.catalog.loader import MAX_CATALOG_BYTES
    path = write(tmp_path, "big.toml", GOOD + "# padding\n" * (MAX_CATALOG_BYTES // 10 + 1))
    with pytest.raises(CatalogError, match=r"big.toml.*larger than"):
        validate_file(path)


def test_the_size_limit_leaves_room_for_catalogs_far_larger_than_the_shipped_ones() -> None:
    from pbx_codes.catalog.loader import MAX_CATALOG_BYTES
    shipped = Path(__file__).resolve().parents[2] / "pbx_codes" / "catalog" / "data"
    assert max(p.stat().st_size for p in shipped.glob("*.toml")) * 50 < MAX_CATALOG_BYTES
