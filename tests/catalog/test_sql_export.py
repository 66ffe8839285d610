"""`pbx-codes export --format sql` on a real PostgreSQL: pbx_codes_resolve() answers what the resolver answers.

Every comparison puts many lookups into one query (`unnest ... CROSS JOIN LATERAL pbx_codes_resolve(...)`) and
compares every field of the answer with `Resolver.lookup` for the same arguments.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbx_codes.catalog import CatalogSet, load_catalogs
from pbx_codes.catalog.sql_export import SqlExportError, literal, sql_script, view_of
from pbx_codes.cli.main import main
from pbx_codes.resolve import Resolver

psycopg = pytest.importorskip("psycopg")

Key = tuple[str | None, str | None, str | None, str | None, int | None]  # catalog, code, phrase, method, q850

SPACES = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2007\u200a\u2028\u2029\u202f\u205f\u3000"


def expected(resolver: Resolver, key: Key) -> tuple:
    catalog, code, phrase, method, q850 = key
    ann = resolver.lookup(code, phrase, catalog=catalog, method=method, q850=q850)
    texts = ann.texts
    return (ann.catalog, ann.code, ann.phrase, ann.matched, ann.exact, ann.match_kind, ann.category.value,
            ann.retry.value, ann.fault.value if ann.fault else None, ann.sip, ann.q850, texts["uk"], texts["ru"],
            texts["en"], ann.original_lang)


def resolve_in_sql(conn, keys: list[Key], schema: str = "public") -> list[tuple]:
    columns = list(zip(*keys)) if keys else [[]] * 5
    rows = conn.execute(
        "SELECT r.catalog, r.code, r.phrase, r.matched, r.exact, r.match_kind, r.category, r.retry, r.fault, r.sip,"
        " r.q850, r.text_uk, r.text_ru, r.text_en, r.original_lang"
        " FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[])"
        "      WITH ORDINALITY AS k (catalog, code, phrase, method, q850, i)"
        f" CROSS JOIN LATERAL {schema}.pbx_codes_resolve(k.catalog, k.code, k.phrase, k.method, k.q850) AS r"
        " ORDER BY k.i", [list(c) for c in columns]).fetchall()
    assert len(rows) == len(keys)  # exactly one row per lookup
    return rows


def assert_same_answers(conn, resolver: Resolver, keys: list[Key]) -> None:
    got = resolve_in_sql(conn, keys)
    differ = [(key, want, row) for key, want, row in zip(keys, (expected(resolver, k) for k in keys), got)
              if tuple(row) != want]
    assert not differ, f"{len(differ)} of {len(keys)} differ, first: {differ[:3]}"


@pytest.fixture(scope="module")
def resolver() -> Resolver:
    return Resolver(load_catalogs())


@pytest.fixture(scope="module")
def exported(postgres_server, resolver):
    """One database with every shipped catalog exported (the module's tests only read it)."""
    url = postgres_server.create_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql_script(view_of(resolver)))
        conn.execute("SET jit = off")  # compiling the big lookup queries costs seconds and changes no answer
        yield conn
    postgres_server.drop_database(url)


def entry_keys(catalogs: CatalogSet) -> list[Key]:
    """Each entry of each catalog by its code, phrase, match and methods, in its own catalog and in every other."""
    ids = [None, *catalogs.ids()]
    keys: list[Key] = []
    for catalog in catalogs:
        for e in catalog.entries:
            methods = [None, *sorted(e.methods), "NoSuchMethod"] if e.methods else [None, "AnyMethod"]
            phrases = [None, e.phrase] if e.phrase else [None]
            if e.match:
                phrases += [e.match, e.match.upper(), f"  prefix {e.match.swapcase()}\tsuffix ",
                            "\u3000".join(e.match.split()), e.match[:-1]]
            for method in methods:
                keys += [(catalog.id, e.code, phrase, method, None) for phrase in phrases]
            if e.match:
                keys += [(catalog.id, "999", e.match, None, None), (catalog.id, None, e.match, None, None)]
            if e.q850 is not None:
                keys.append((catalog.id, "999", None, None, e.q850))
            keys += [(other, e.code, None, None, None) for other in ids if other != catalog.id]
    return keys


def test_every_entry_of_every_catalog_resolves_in_sql_as_in_python(exported, resolver) -> None:
    keys = entry_keys(resolver.catalogs)
    assert len(keys) > 4000
    assert_same_answers(exported, resolver, keys)


def generated_unknown_codes() -> list[str]:
    """Codes no entry has, which the catalogs read by class (digits, Q.850 ranges) or through a fallback."""
    codes = [str(n) for n in range(10000)]  # every 1-4 digit code: sip 49x/4xx, mango 221x/22xx/2xxx, q850 ranges
    codes += [f"{n:03d}" for n in range(100)] + [f"{n:05d}" for n in range(0, 100000, 997)]
    codes += ["", " 486", "486 ", "4 86", "-1", "+486", "4.86", "0x1f", "9" * 18, "9" * 19, "1" * 40]
    codes += ["²19", "2²19", "٢٢١٩", "22١9", "𝟐𝟐𝟏𝟗", "٣٤", "１７", "④⑧⑥", "Ⅳ"]  # str.isdigit/isdecimal, not ASCII
    leg = ["", "0", "2", "200", "180", "486", "4", "487", "603", "999", "x"]
    codes += [f"{a}/{b}" for a in leg for b in leg] + ["200/486/1", "/", "//", "200//"]
    return codes


def test_unknown_codes_fall_back_by_class_in_sql_as_in_python(exported, resolver) -> None:
    ids = [None, "nonexistent", *resolver.catalogs.ids()]
    keys: list[Key] = [(catalog, code, None, None, None) for catalog in ids for code in generated_unknown_codes()]
    by_kind = {expected(resolver, k)[5] for k in keys}
    assert {"class", "code", "none"} <= by_kind  # the set really exercises class fallback
    assert_same_answers(exported, resolver, keys)


def test_q850_cause_is_the_last_step_in_sql_as_in_python(exported, resolver) -> None:
    causes = [*range(-1, 135), 10 ** 12]
    keys: list[Key] = [(catalog, code, None, None, q) for q in causes for catalog, code in
                       (("sip", "799"), ("lifecell", "799"), ("mango", "9"), (None, None), ("q850", "1"))]
    assert "q850" in {expected(resolver, k)[5] for k in keys}
    assert_same_answers(exported, resolver, keys)


_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


@st.composite
def lookups(draw, catalogs: CatalogSet) -> Key:
    catalog = draw(st.sampled_from([None, *catalogs.ids()]))
    entries = [e for c in catalogs for e in c.entries]
    code = draw(st.one_of(st.sampled_from([e.code for e in entries]), _TEXT, st.integers(0, 99999).map(str),
                          st.none()))
    matches = [e.match for e in entries if e.match] + ["Busy Here", "ß", "İ"]
    words = draw(st.lists(st.one_of(st.sampled_from(matches), _TEXT), max_size=3))
    glue = draw(st.lists(st.sampled_from(SPACES), min_size=len(words) + 1, max_size=len(words) + 1))
    phrase = "".join(g + draw(st.sampled_from([w, w.upper(), w.lower(), w.swapcase()]))
                     for g, w in zip(glue, words)) + glue[-1]
    methods = sorted({m for e in entries for m in e.methods})
    method = draw(st.one_of(st.none(), st.just(""), st.sampled_from(methods), _TEXT))
    q850 = draw(st.one_of(st.none(), st.integers(0, 130)))
    return catalog, code, draw(st.sampled_from([phrase, None, ""])), method, q850


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_any_text_resolves_in_sql_as_in_python(exported, resolver, data) -> None:
    """Phrases with any case and Unicode whitespace, odd codes and methods: folding is Python's, exactly."""
    keys = data.draw(st.lists(lookups(resolver.catalogs), min_size=1, max_size=40))
    assert_same_answers(exported, resolver, keys)


def test_fold_in_sql_is_python_casefold_and_split(exported) -> None:
    samples = ["Straße", "İstanbul", "ΣΊΣΥΦΟΣ", "ﬁle", "ǅ", "\u1e9e", "A\u3000\u3000B\x1cC", "\x85lead trail\u2029",
               "MIXED case  Ünïcödé", "ꭰᏸ", "𐐀𐐨", "", " \t "]
    rows = exported.execute("SELECT pbx_codes_fold(s) FROM unnest(%s::text[]) WITH ORDINALITY AS t (s, i) "
                            "ORDER BY i", [samples]).fetchall()
    assert [r[0] for r in rows] == [" ".join(s.casefold().split()) for s in samples]


def test_update_from_annotates_a_cdr_table(exported, resolver) -> None:
    cdrs = [(1, "lifecell", "503", "Simultaneous calls limit reached", None),
            (2, "lifecell", "500", "Service Unavailable. X-FWD-Original incorrect", None),
            (3, "mango", "2219", None, None), (4, "callback", "200/486", None, None),
            (5, "voipnow", "030", None, "GetChannels"),
            (6, "sipcall", "403", "This call is not covered by your tariff plan", None),
            (7, None, "486", "Busy Here", None), (8, "voipnow", "999", None, None)]
    exported.execute("CREATE TEMP TABLE cdr (id int PRIMARY KEY, trunk_catalog text, sip_code text, reason text,"
                     " api_method text, pbx_category text, pbx_retry text, pbx_exact boolean, pbx_q850 bigint,"
                     " pbx_reason text)")
    with exported.cursor() as cur:
        cur.executemany("INSERT INTO cdr (id, trunk_catalog, sip_code, reason, api_method) VALUES (%s, %s, %s, %s, %s)",
                        cdrs)
    updated = exported.execute(
        "UPDATE cdr SET pbx_category = r.category, pbx_retry = r.retry, pbx_exact = r.exact, pbx_q850 = r.q850,"
        "               pbx_reason = r.text_en"
        " FROM cdr AS c CROSS JOIN LATERAL pbx_codes_resolve(c.trunk_catalog, c.sip_code, c.reason, c.api_method) r"
        " WHERE cdr.id = c.id").rowcount
    assert updated == len(cdrs)
    got = exported.execute("SELECT id, pbx_category, pbx_retry, pbx_exact, pbx_q850, pbx_reason FROM cdr ORDER BY id"
                           ).fetchall()
    want = []
    for id_, catalog, code, phrase, method in cdrs:
        ann = resolver.lookup(code, phrase, catalog=catalog, method=method)
        want.append((id_, ann.category.value, ann.retry.value, ann.exact, ann.q850, ann.texts["en"]))
    assert got == want
    assert got[0][1:3] == ("capacity", "failover") and got[7][1] == "unknown"


PRECEDENCE = """\
id = "prec"
title = "every step of the precedence against the next"
source = "test"
original_lang = "en"
code_space = "result"
class_scheme = "digits"
fallback = "prec2"
[classes]
"55x" = "501"
"5xx" = "500"
"50xx" = "500"
{entries}
"""

PRECEDENCE_ENTRIES = [  # (code, extra TOML lines); file order matters to the resolver
    ("500", ""), ("500", 'methods = ["M1"]'), ("500", 'methods = ["M2"]'), ("500", 'match = "alpha"'),
    ("500", 'match = "alpha"\nmethods = ["M1"]'), ("Alpha Beta msg", 'match = "alpha beta"\nmessage = true'),
    ("501", ""), ("501", 'methods = ["M9"]'), ("501", 'match = "zeta"'), ("502", 'methods = ["M1"]'),
    ("502", 'methods = ["M2"]'), ("5xx", ""), ("6xx", 'match = "gamma"'), ("503", 'match = "beta"'),
    ("5099", 'match = "omega"\nmessage = true'),
]

FALLBACK = """\
id = "prec2"
title = "range classes behind prec"
source = "test"
original_lang = "en"
code_space = "result"
class_scheme = "range"
[classes]
"700-799" = "700"
"0-999" = "1"
[[entry]]
code = "700"
category = "busy"
retry = "later"
[entry.text]
uk = "сімсот"
ru = "семьсот"
en = "seven hundred"
[[entry]]
code = "1"
category = "config"
retry = "no"
[entry.text]
uk = "один"
ru = "один"
en = "one"
[[entry]]
code = "500"
category = "network"
retry = "failover"
[entry.text]
uk = "п'ятсот"
ru = "пятьсот"
en = "five hundred in prec2"
"""


def test_each_step_beats_the_next_in_sql_as_in_python(postgres_url, tmp_path) -> None:
    """A catalog where every step of the precedence competes with the next one for the same lookup."""
    entries = "\n".join(
        f'[[entry]]\ncode = "{code}"\n{extra}\ncategory = "busy"\nretry = "no"\n[entry.text]\n'
        f'uk = "{i}"\nru = "{i}"\nen = "entry {i if code != "501" or "match" in extra else 501}"'
        for i, (code, extra) in enumerate(PRECEDENCE_ENTRIES))
    user_dir = tmp_path / "catalogs"
    user_dir.mkdir()
    (user_dir / "prec.toml").write_text(PRECEDENCE.replace("{entries}", entries), encoding="utf-8")
    (user_dir / "prec2.toml").write_text(FALLBACK, encoding="utf-8")
    resolver = Resolver(load_catalogs([user_dir]))
    codes = ["500", "501", "502", "503", "550", "559", "5", "50", "5000", "600", "699", "6", "750", "42", "1000",
             "Alpha Beta msg", None, "", "٥٠٠", "٧٥٠", "5099", "5098"]
    phrases = [None, "alpha", "ALPHA  beta", "x alpha", "gamma", "beta", "zeta"]
    methods = [None, "", "M1", "M2", "M3", "M9"]
    keys: list[Key] = [(catalog, code, phrase, method, None) for catalog in ("prec", "prec2") for code in codes
                       for phrase in phrases for method in methods]
    kinds = {expected(resolver, k)[5:7] for k in keys}
    assert {("phrase", "busy"), ("code", "busy"), ("class", "busy"), ("class", "config"), ("code", "network")} <= kinds
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql_script(view_of(resolver)))
        conn.execute("SET jit = off")
        assert_same_answers(conn, resolver, keys)


def test_configured_default_catalog_answers_for_a_missing_or_unknown_catalog(postgres_url) -> None:
    resolver = Resolver(load_catalogs(), default_catalog="lifecell")
    keys: list[Key] = [(catalog, code, phrase, None, None) for catalog in (None, "", "nope", "sip")
                       for code in ("409", "503", "699", "200/486") for phrase in (None, "Not enough money")]
    assert expected(resolver, (None, "409", None, None, None))[0] == "lifecell"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql_script(view_of(resolver)))
        conn.execute("SET jit = off")
        assert_same_answers(conn, resolver, keys)


# --- the script itself: injection-safe, all-or-nothing, catalogs by id ---------------------------------------------

HOSTILE = [
    "'); DROP TABLE canary; --",
    "it''s \\' \\\\ backslash\\",
    "$$ $pbx$ $body$ $check$ end",
    "line one\n\\! touch {marker}\n\\gexec\nline three",
    ":'secret' :\"ident\" :var",
    "*/ /* -- comment",
    "E'\\x41' U&'\\0041' \";DROP TABLE canary;--",
]


def hostile_catalog(directory: Path, marker: Path) -> Path:
    texts = [t.replace("{marker}", str(marker)) for t in HOSTILE]
    lines = [
        'id = "hostile"', f"title = {toml_string(texts[0])}", f"source = {toml_string(texts[3])}",
        'original_lang = "en"', 'code_space = "result"', 'class_scheme = "digits"', 'fallback = "sip"',
        "[classes]", f"{toml_string(texts[0] + 'x')} = {toml_string(texts[1])}",
    ]
    for i, text in enumerate(texts):
        lines += ["[[entry]]", f"code = {toml_string(text)}", f"match = {toml_string('m ' + text)}",
                  f"methods = [{toml_string(text)}]", f"note = {toml_string(text)}", 'category = "config"',
                  'retry = "no"', "[entry.text]", f"uk = {toml_string('uk ' + text)}",
                  f"ru = {toml_string('ru ' + text)}", f"en = {toml_string(f'en {i} ' + text)}"]
        lines += ["[[entry]]", f"code = {toml_string(text)}", f"phrase = {toml_string(text)}", 'category = "busy"',
                  'retry = "later"', "[entry.text]", f"uk = {toml_string(text)}", f"ru = {toml_string(text)}",
                  f"en = {toml_string(text)}"]
    directory.mkdir(exist_ok=True)
    path = directory / "hostile.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def toml_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def test_hostile_catalog_text_goes_through_psql_as_data(postgres_server, tmp_path, capsys) -> None:
    marker = tmp_path / "psql-ran-a-shell-command"
    user_dir = tmp_path / "catalogs"
    hostile_catalog(user_dir, marker)
    assert main(["export", "--format", "sql", "--catalog-dir", str(user_dir)]) == 0
    script = capsys.readouterr().out
    url = postgres_server.create_database()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE canary (x int)")
        done = subprocess.run([str(postgres_server.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                               "-v", "secret=LEAKED", "-d", url], input=script, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert not marker.exists()
        catalogs = load_catalogs([user_dir])
        resolver = Resolver(catalogs)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT count(*) FROM canary")  # still there
            stored = conn.execute("SELECT title, source FROM pbx_codes_catalog WHERE id = 'hostile'").fetchone()
            assert stored == (catalogs["hostile"].title, catalogs["hostile"].source)
            rows = conn.execute("SELECT code, match, methods, note, text_uk, text_ru, text_en FROM pbx_codes_entry"
                                " WHERE catalog = 'hostile' ORDER BY seq").fetchall()
            assert rows == [(e.code, e.match, sorted(e.methods), e.note, *e.texts.values())
                            for e in catalogs["hostile"].entries]
            keys: list[Key] = []
            for e in catalogs["hostile"].entries:
                keys += [("hostile", e.code, None, None, None), ("hostile", e.code, e.match, None, None),
                         ("hostile", e.code, None, next(iter(e.methods), None), None),
                         ("hostile", "1" + e.code, None, None, None)]
            keys.append(("hostile", "2219", None, None, None))
            assert_same_answers(conn, resolver, keys)
    finally:
        postgres_server.drop_database(url)


def test_literal_quotes_every_string_and_refuses_nul() -> None:
    assert literal("it's") == "'it''s'"
    assert literal("a\\'b") == "E'a\\\\''b'"
    assert literal(["x'y"]) == "ARRAY['x''y']::text[]" and literal(frozenset()) == "'{}'::text[]"
    with pytest.raises(SqlExportError, match="NUL"):
        literal("bad\x00text")


def test_export_refuses_a_catalog_with_nul_text_in_one_line(tmp_path, capsys) -> None:
    user_dir = tmp_path / "catalogs"
    user_dir.mkdir()
    (user_dir / "nul.toml").write_text(
        'id = "nul"\ntitle = "t"\nsource = "s"\noriginal_lang = "en"\ncode_space = "result"\nclass_scheme = "none"\n'
        '[[entry]]\ncode = "1"\ncategory = "busy"\nretry = "no"\n[entry.text]\nuk = "a"\nru = "b"\nen = "c\\u0000d"\n',
        encoding="utf-8")
    assert main(["export", "--format", "sql", "--catalog-dir", str(user_dir)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "NUL" in err and "nul.toml: entry #1 (code '1')" in err and len(err.strip().splitlines()) == 1


def test_one_catalog_exports_with_its_fallbacks_and_keeps_the_others(postgres_url, capsys) -> None:
    resolver = Resolver(load_catalogs())
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        assert main(["export", "--format", "sql", "lifecell"]) == 0
        conn.execute(capsys.readouterr().out)
        ids = {r[0] for r in conn.execute("SELECT id FROM pbx_codes_catalog")}
        assert ids == {"lifecell", "sip", "q850"}  # its fallback, the default and the Q.850 catalog
        assert main(["export", "--format", "sql", "mango"]) == 0
        conn.execute(capsys.readouterr().out)
        ids = {r[0] for r in conn.execute("SELECT id FROM pbx_codes_catalog")}
        assert ids == {"lifecell", "sip", "q850", "mango"}
        counts = dict(conn.execute("SELECT catalog, count(*) FROM pbx_codes_entry GROUP BY catalog").fetchall())
        assert counts == {c: len(resolver.catalogs[c].entries) for c in ids}  # replaced, not doubled
        assert_same_answers(conn, resolver, [("lifecell", "409", "Not enough money", None, None),
                                             ("mango", "2219", None, None, None), ("lifecell", "699", None, None, 3)])


def test_a_broken_script_changes_nothing(postgres_url, resolver) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql_script(view_of(resolver)))
        broken = sql_script(view_of(resolver)).replace("COMMIT;", "SELECT 1/0;\nCOMMIT;")
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute(broken)
        conn.execute("ROLLBACK")
        assert conn.execute("SELECT count(*) FROM pbx_codes_entry").fetchone()[0] == sum(
            len(c.entries) for c in resolver.catalogs)


def test_schema_option_puts_everything_in_that_schema(postgres_url, resolver, capsys) -> None:
    assert main(["export", "--format", "sql", "--schema", 'cdr "ware$pbx$house"']) == 0
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(capsys.readouterr().out)
        query = 'SELECT category FROM "cdr ""ware$pbx$house""".pbx_codes_resolve(\'mango\', \'2219\')'
        row = conn.execute(query).fetchone()
        assert row == (resolver.lookup("2219", catalog="mango").category.value,)
        assert conn.execute("SELECT to_regclass('public.pbx_codes_entry')").fetchone() == (None,)


def test_export_json_still_needs_exactly_one_catalog(capsys) -> None:
    assert main(["export", "--format", "json"]) == 2
    assert "exactly one" in capsys.readouterr().err
    assert main(["export", "--format", "sql", "nope"]) == 2
    assert "unknown catalog 'nope'" in capsys.readouterr().err
