"""The mango and voipnow catalogs say exactly what their seed documents say.

The texts in the original language are the providers' own words: a catalog that paraphrases, drops or invents a code
would explain a failed call with something the provider never wrote. These tests read the seeds directly and compare
them with the shipped TOML files character for character.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SEEDS_DIR = REPO_ROOT.parent / "shared" / "seeds"
DATA_DIR = REPO_ROOT / "pbx_codes" / "catalog" / "data"
MANGO_SEED = SEEDS_DIR / "003_70b3d05360f7addc.txt"
VOIPNOW_SEED = SEEDS_DIR / "004_b7771f7d6165ba80.txt"

CATEGORIES = {
    "ok", "busy", "no_answer", "declined", "unavailable", "invalid_number", "cancelled", "auth", "forbidden",
    "billing", "capacity", "media", "network", "config", "request_error", "not_found", "pending",
}
RETRIES = {"no", "later", "failover"}
FAULTS = {"caller", "callee", "carrier", "local"}
ENTRY_KEYS = {
    "code", "phrase", "match", "message", "methods", "category", "retry", "fault", "sip", "q850", "q850_asterisk",
    "q850_freeswitch", "name", "deprecated", "original", "note", "text",
}
TOP_KEYS = {"id", "title", "source", "original_lang", "code_space", "class_scheme", "fallback", "classes", "entry"}

CLASS_PATTERN = re.compile(r"\d[\dx]*x")
CODE = re.compile(r"\d{4}")
INLINE_CODE_START = re.compile(r"\d{4} ")
INLINE_ENTRY = re.compile(r"(\d{4}) (.+?)(?= \d{4} |$)")
METHOD_HEADING = re.compile(r"## (\w+)")
VOIPNOW_ROW = re.compile(r"(\d{3})\t(.+)")


def _read_seed(path: Path) -> str:
    if not path.is_file():
        pytest.skip(f"seed document {path} is not present (the shared reference tree is not mounted)")
    return path.read_text(encoding="utf-8")


def parse_mango_seed(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(code, description) rows and the class patterns of the table; a row may hold two entries inline."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Класс\t"))
    entries: list[tuple[str, str]] = []
    classes: list[str] = []
    for line in lines[start + 1:]:
        fields = [field.strip() for field in line.split("\t") if field.strip()]
        i = 0
        while i < len(fields):
            field = fields[i]
            if CLASS_PATTERN.fullmatch(field):
                classes.append(field)
                i += 1
            elif CODE.fullmatch(field):
                entries.append((field, fields[i + 1].strip()))
                i += 2
            elif INLINE_CODE_START.match(field):
                entries.extend((m.group(1), m.group(2).strip()) for m in INLINE_ENTRY.finditer(field))
                i += 1
            else:
                raise AssertionError(f"unparsed field {field!r} in seed line {line!r}")
    return entries, classes


def parse_voipnow_seed(text: str) -> list[tuple[str, str, str]]:
    """(method, code, description) for every row of every method section."""
    rows: list[tuple[str, str, str]] = []
    method: str | None = None
    for line in text.splitlines():
        heading = METHOD_HEADING.fullmatch(line)
        if heading:
            method = heading.group(1)
            continue
        row = VOIPNOW_ROW.fullmatch(line)
        if row and method:
            rows.append((method, row.group(1), row.group(2).strip()))
    return rows


def class_of(code: str, classes: dict[str, str]) -> str | None:
    """The digits rule: trailing digits become x one at a time; the first known pattern wins."""
    for width in range(1, len(code) + 1):
        pattern = code[:-width] + "x" * width
        if pattern in classes:
            return pattern
    return None


def _load(name: str) -> dict[str, Any]:
    with (DATA_DIR / name).open("rb") as handle:
        return tomllib.load(handle)


@pytest.fixture(scope="module")
def mango_seed() -> tuple[list[tuple[str, str]], list[str]]:
    return parse_mango_seed(_read_seed(MANGO_SEED))


@pytest.fixture(scope="module")
def voipnow_seed() -> list[tuple[str, str, str]]:
    return parse_voipnow_seed(_read_seed(VOIPNOW_SEED))


@pytest.fixture(scope="module")
def mango() -> dict[str, Any]:
    return _load("mango.toml")


@pytest.fixture(scope="module")
def voipnow() -> dict[str, Any]:
    return _load("voipnow.toml")


# --- the seed parsers themselves -------------------------------------------------------------------------------


def test_mango_seed_parser_splits_a_row_holding_two_entries() -> None:
    entries, classes = parse_mango_seed(
        "Класс\tКод\tОписание\n\t111x\t1110 Вызов завершен вызываемым абонентом 1111 Вызов не получил ответа\n"
    )
    assert entries == [("1110", "Вызов завершен вызываемым абонентом"), ("1111", "Вызов не получил ответа")]
    assert classes == ["111x"]


def test_mango_seed_yields_every_code_once(mango_seed: tuple[list[tuple[str, str]], list[str]]) -> None:
    entries, classes = mango_seed
    codes = [code for code, _ in entries]
    assert len(codes) == len(set(codes)) == 103
    assert {"1000", "1110", "1111", "2211", "6102"} <= set(codes)
    assert len(classes) == len(set(classes)) == 43


def test_voipnow_seed_yields_every_method_section(voipnow_seed: list[tuple[str, str, str]]) -> None:
    methods = {method for method, _, _ in voipnow_seed}
    assert len(methods) == 24
    assert len(voipnow_seed) == 370


# --- mango ------------------------------------------------------------------------------------------------------


def test_mango_header_matches_the_source(mango: dict[str, Any]) -> None:
    assert mango["id"] == "mango"
    assert mango["original_lang"] == "ru"
    assert mango["code_space"] == "result"
    assert mango["class_scheme"] == "digits"
    assert "fallback" not in mango


def test_every_mango_seed_entry_is_in_the_catalog_word_for_word(
    mango: dict[str, Any], mango_seed: tuple[list[tuple[str, str]], list[str]]
) -> None:
    catalog = {entry["code"]: entry["text"]["ru"] for entry in mango["entry"]}
    for code, description in mango_seed[0]:
        assert code in catalog, f"seed code {code} missing from mango.toml"
        assert catalog[code].encode("utf-8") == description.encode("utf-8"), code


def test_mango_catalog_holds_nothing_the_seed_lacks(
    mango: dict[str, Any], mango_seed: tuple[list[tuple[str, str]], list[str]]
) -> None:
    seed_pairs = set(mango_seed[0])
    catalog_pairs = [(entry["code"], entry["text"]["ru"]) for entry in mango["entry"]]
    assert len(catalog_pairs) == len(set(catalog_pairs))
    assert set(catalog_pairs) - seed_pairs == set()


def test_mango_classes_are_exactly_those_the_seed_names(
    mango: dict[str, Any], mango_seed: tuple[list[tuple[str, str]], list[str]]
) -> None:
    classes = mango["classes"]
    assert set(classes) == set(mango_seed[1])
    for pattern, target in classes.items():
        assert target == pattern.replace("x", "0"), pattern


def test_mango_class_targets_are_entries(mango: dict[str, Any]) -> None:
    codes = {entry["code"] for entry in mango["entry"]}
    missing = {pattern: target for pattern, target in mango["classes"].items() if target not in codes}
    assert missing == {}


@pytest.mark.parametrize(
    ("unknown", "pattern", "representative"),
    [("2219", "221x", "2210"), ("1090", "1xxx", "1000"), ("6019", "601x", "6010"), ("1129", "112x", "1120")],
)
def test_unknown_mango_code_falls_to_its_class_by_the_digits_rule(
    mango: dict[str, Any], unknown: str, pattern: str, representative: str
) -> None:
    codes = {entry["code"] for entry in mango["entry"]}
    assert unknown not in codes
    assert class_of(unknown, mango["classes"]) == pattern
    assert mango["classes"][pattern] == representative


def test_mango_known_equivalents_hold(mango: dict[str, Any]) -> None:
    by_code = {entry["code"]: entry for entry in mango["entry"]}
    assert (by_code["1121"]["category"], by_code["1121"]["sip"], by_code["1121"]["q850"]) == ("busy", "486", 17)
    assert (by_code["1133"]["category"], by_code["1133"]["sip"], by_code["1133"]["q850"]) == (
        "invalid_number", "404", 1)
    assert (by_code["5001"]["category"], by_code["5001"]["retry"]) == ("capacity", "later")
    assert by_code["2240"]["category"] == "billing"


# --- voipnow ----------------------------------------------------------------------------------------------------


def test_voipnow_header_matches_the_source(voipnow: dict[str, Any]) -> None:
    assert voipnow["id"] == "voipnow"
    assert voipnow["original_lang"] == "en"
    assert voipnow["code_space"] == "api"
    assert voipnow["class_scheme"] == "none"
    assert "fallback" not in voipnow
    assert "classes" not in voipnow


def test_every_voipnow_seed_row_is_in_the_catalog_under_its_method(
    voipnow: dict[str, Any], voipnow_seed: list[tuple[str, str, str]]
) -> None:
    catalog = {
        (entry["code"], entry["text"]["en"].encode("utf-8"), method)
        for entry in voipnow["entry"]
        for method in entry["methods"]
    }
    for method, code, description in voipnow_seed:
        assert (code, description.encode("utf-8"), method) in catalog, (method, code, description)


def test_voipnow_catalog_holds_nothing_the_seed_lacks(
    voipnow: dict[str, Any], voipnow_seed: list[tuple[str, str, str]]
) -> None:
    seed = {(code, description, method) for method, code, description in voipnow_seed}
    extra = [
        (entry["code"], entry["text"]["en"], method)
        for entry in voipnow["entry"]
        for method in entry["methods"]
        if (entry["code"], entry["text"]["en"], method) not in seed
    ]
    assert extra == []


def test_voipnow_has_one_entry_per_distinct_code_and_description(
    voipnow: dict[str, Any], voipnow_seed: list[tuple[str, str, str]]
) -> None:
    pairs = [(entry["code"], entry["text"]["en"]) for entry in voipnow["entry"]]
    assert len(pairs) == len(set(pairs)) == len({(code, text) for _, code, text in voipnow_seed}) == 79
    for entry in voipnow["entry"]:
        assert entry["methods"] == sorted(set(entry["methods"])), entry["code"]


def test_voipnow_codes_keep_their_leading_zeros(voipnow: dict[str, Any]) -> None:
    codes = {entry["code"] for entry in voipnow["entry"]}
    assert {"030", "037", "039", "051"} <= codes
    assert not {"30", "37", "39", "51"} & codes


def test_voipnow_same_code_keeps_its_per_method_meanings(voipnow: dict[str, Any]) -> None:
    by_code: dict[str, dict[str, tuple[str, ...]]] = {}
    for entry in voipnow["entry"]:
        by_code.setdefault(entry["code"], {})[entry["text"]["en"]] = tuple(entry["methods"])
    assert by_code["200"]["Unable to completely assign public phone numbers. Not enough numbers available."] == (
        "AssignPublicNo",
    )
    assert "AssignPublicNo" not in by_code["200"]["Duplicate record.{object_detail}"]
    prefix = ("Invalid channel password. Value must be at least 1 character long and cannot contain any of the "
              "following characters: ")
    assert by_code["607"] == {prefix + ";/?:@&=+\\$.# .": ("AddChannel",), prefix + ";/?:@&=+\\$,# .": ("EditChannel",)}


def test_voipnow_translations_keep_placeholders(voipnow: dict[str, Any]) -> None:
    for entry in voipnow["entry"]:
        placeholders = set(re.findall(r"\{\w+\}", entry["text"]["en"]))
        for lang in ("uk", "ru"):
            assert set(re.findall(r"\{\w+\}", entry["text"][lang])) == placeholders, (entry["code"], lang)


# --- both -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mango.toml", "voipnow.toml"])
def test_every_entry_speaks_all_three_languages(name: str) -> None:
    catalog = _load(name)
    for entry in catalog["entry"]:
        for lang in ("uk", "ru", "en"):
            text = entry["text"].get(lang)
            assert isinstance(text, str) and text.strip(), (entry["code"], lang)
        original = entry["text"][catalog["original_lang"]]
        # Ukrainian and Russian may share a word ("Перезапуск"); English never shares a script with them.
        other_script = ("en",) if catalog["original_lang"] != "en" else ("uk", "ru")
        for lang in other_script:
            assert entry["text"][lang] != original, (entry["code"], lang)


@pytest.mark.parametrize("name", ["mango.toml", "voipnow.toml"])
def test_catalog_uses_only_documented_fields_and_values(name: str) -> None:
    catalog = _load(name)
    assert set(catalog) <= TOP_KEYS
    keys_seen: set[tuple[str, str | None, tuple[str, ...]]] = set()
    for entry in catalog["entry"]:
        assert set(entry) <= ENTRY_KEYS, entry["code"]
        assert set(entry["text"]) == {"uk", "ru", "en"}, entry["code"]
        assert entry["category"] in CATEGORIES, entry["code"]
        assert entry["retry"] in RETRIES, entry["code"]
        assert entry.get("fault", "caller") in FAULTS, entry["code"]
        assert 0 <= entry.get("q850", 0) <= 127, entry["code"]
        assert isinstance(entry.get("sip", ""), str), entry["code"]
        key = (entry["code"], entry.get("match"), tuple(entry.get("methods", ())))
        assert key not in keys_seen, key
        keys_seen.add(key)
