"""The catalogs as a PostgreSQL script: lookup tables plus `pbx_codes_resolve(catalog, code, phrase, method, q850)`.

Operators who keep CDRs in a warehouse annotate them where they are, with one `UPDATE ... FROM` or a view, and get
the answer `Resolver.lookup` gives. The function ranks every candidate by the resolver's precedence (catalog of
the fallback chain, then phrase-specific entry, provider message, code, message by its own words, class; the Q.850
cause after every catalog; `unknown` last) and takes the first. What Python decides once per catalog set (fallback
chains, class targets, whether a code's plain entries agree) is computed here and shipped as data; what depends on
the observed text (phrase folding, digit classes, numbers) runs in SQL with Python's own Unicode tables.

Every catalog string reaches the script as a quoted literal of a data statement, never in a comment; the function
bodies hold only the two configured catalog ids, as literals under a dollar tag they do not contain. The script is
safe to pipe into `psql` whatever a user catalog holds.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pbx_codes import __version__
from pbx_codes.catalog.loader import CatalogSet
from pbx_codes.catalog.schema import Catalog, Entry
from pbx_codes.catalog.sql_unicode import UnicodeTables, read_tables, regex_class
from pbx_codes.errors import InputError
from pbx_codes.model import LANGS

if TYPE_CHECKING:
    from pbx_codes.resolve import Resolver

_MAX_IDENTIFIER_BYTES = 63  # PostgreSQL silently truncates longer names
_Q850_STEP = 1_000_000_000  # chain position of the Q.850 step: after every catalog of any chain
_UNKNOWN_STEP = 2_000_000_000


class SqlExportError(InputError):
    """The catalogs cannot be written as SQL (text PostgreSQL cannot hold, a bad schema name, an unknown id)."""


@dataclass(frozen=True, slots=True)
class ResolverView:
    """What the resolver decides beyond the catalogs: its default catalog and its Q.850 catalog."""

    catalogs: CatalogSet
    default_catalog: str = "sip"
    q850_catalog: str = "q850"
    unknown_texts: tuple[tuple[str, str], ...] = ()


# --- quoting ---------------------------------------------------------------------------------------------------------

def literal(value: object) -> str:
    """A PostgreSQL literal for `value`, correct whatever `standard_conforming_strings` says."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if "\x00" in value:
            raise SqlExportError(f"text {value[:40]!r}... holds a NUL character, which PostgreSQL text cannot hold")
        quoted = value.replace("'", "''")
        if "\\" in quoted:
            return "E'" + quoted.replace("\\", "\\\\") + "'"
        return "'" + quoted + "'"
    if isinstance(value, (list, tuple, frozenset)):
        items = sorted(value) if isinstance(value, frozenset) else value
        return "ARRAY[" + ", ".join(literal(v) for v in items) + "]::text[]" if items else "'{}'::text[]"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def identifier(name: str) -> str:
    """A quoted identifier; refuses what PostgreSQL would silently change (NUL, longer than 63 bytes)."""
    if not name or "\x00" in name or len(name.encode("utf-8")) > _MAX_IDENTIFIER_BYTES:
        raise SqlExportError(f"schema name {name!r} must be 1-{_MAX_IDENTIFIER_BYTES} bytes without NUL")
    return '"' + name.replace('"', '""') + '"'


def _dollar_quote(body: str) -> str:
    tag = "$pbx$"
    n = 0
    while tag in body:
        n += 1
        tag = f"$pbx{n}$"
    return f"{tag}\n{body}\n{tag}"


# --- which catalogs --------------------------------------------------------------------------------------------------

def fallback_chain(catalogs: CatalogSet, first: Catalog) -> list[Catalog]:
    """The catalog and its fallbacks, each once, as the resolver walks them."""
    chain: list[Catalog] = []
    current: Catalog | None = first
    while current is not None and current not in chain:
        chain.append(current)
        current = catalogs.get(current.fallback)
    return chain


def closure(view: ResolverView, ids: Sequence[str] = ()) -> list[Catalog]:
    """The named catalogs (all when none) with everything their answers depend on: fallbacks, default, Q.850."""
    catalogs = view.catalogs
    missing = [i for i in ids if i not in catalogs]
    if missing:
        raise SqlExportError(f"unknown catalog {missing[0]!r}; known: {', '.join(catalogs.ids())}")
    roots = [catalogs[i] for i in (ids or catalogs.ids())]
    roots += [c for c in (catalogs.get(view.default_catalog), catalogs.get(view.q850_catalog)) if c is not None]
    wanted = {c.id for root in roots for c in fallback_chain(catalogs, root)}
    return [c for c in catalogs if c.id in wanted]


# --- data rows -------------------------------------------------------------------------------------------------------

def _agree(entries: Iterable[Entry]) -> bool:
    return len({e.texts["en"] for e in entries}) == 1


def _entry_rows(catalog: Catalog) -> list[str]:
    plain_by_code: dict[str, list[Entry]] = {}
    for entry in catalog.entries:
        if entry.match_key is None:
            plain_by_code.setdefault(entry.code, []).append(entry)
    rows = []
    for seq, e in enumerate(catalog.entries):
        plain = plain_by_code.get(e.code, [])
        where = f"{catalog.path}: entry #{seq + 1} (code {e.code!r})"
        values = [
            catalog.id, seq, e.code, e.phrase, e.match, e.match_key, e.message, e.methods, e.category.value,
            e.retry.value, e.fault.value if e.fault else None, e.sip, e.q850, e.q850_asterisk, e.q850_freeswitch,
            e.name, e.deprecated, e.note, e.original_lang, *(e.texts[lang] for lang in LANGS),
            _agree(plain), _agree(p for p in plain if not p.methods),
        ]
        rows.append(_row(where, values))
    return rows


def _class_rows(catalog: Catalog) -> list[str]:
    """One row per class pattern with the entry that stands for it (the resolver's `lookup(target)[-1]`)."""
    patterns: list[str] = []
    if catalog.class_scheme == "digits":
        # an entry whose own code is a pattern (sip's "4xx") is a class too; [classes] wins when both name it
        patterns = list(catalog.classes) + [e.code for e in catalog.entries
                                            if e.code.endswith("x") and e.code not in catalog.classes]
    elif catalog.class_scheme == "range":
        patterns = list(catalog.classes)
    seq_of = {id(e): seq for seq, e in enumerate(catalog.entries)}
    rows, seen = [], set()
    for rank, pattern in enumerate(patterns):
        if pattern in seen:
            continue
        seen.add(pattern)
        entries = catalog.lookup(catalog.classes.get(pattern, pattern))
        if not entries:  # the loader refuses such a class; never ship a class that answers nothing
            raise SqlExportError(f"{catalog.path}: class {pattern!r} names no entry")
        low = high = None
        if catalog.class_scheme == "range":
            low_text, _, high_text = pattern.partition("-")
            low, high = int(low_text), int(high_text)
        values = [catalog.id, pattern, rank, low, high, seq_of[id(entries[-1])]]
        rows.append(_row(f"{catalog.path}: classes.{pattern}", values))
    return rows


def _catalog_row(view: ResolverView, catalog: Catalog) -> str:
    chain = [c.id for c in fallback_chain(view.catalogs, catalog)]
    values = [catalog.id, catalog.title, catalog.source, catalog.original_lang, catalog.code_space,
              catalog.class_scheme, catalog.fallback, chain]
    return _row(catalog.path, values)


def _row(where: str, values: Sequence[object]) -> str:
    try:
        return "(" + ", ".join(literal(v) for v in values) + ")"
    except SqlExportError as exc:
        raise SqlExportError(f"{where}: {exc}") from None


# --- the script ------------------------------------------------------------------------------------------------------

_TABLES = """\
CREATE TABLE IF NOT EXISTS {S}.pbx_codes_catalog (
    id text COLLATE "C" PRIMARY KEY,
    title text NOT NULL,
    source text NOT NULL,
    original_lang text NOT NULL,
    code_space text NOT NULL,
    class_scheme text NOT NULL,
    fallback text COLLATE "C",
    chain text[] COLLATE "C" NOT NULL
);
CREATE TABLE IF NOT EXISTS {S}.pbx_codes_entry (
    catalog text COLLATE "C" NOT NULL REFERENCES {S}.pbx_codes_catalog (id) ON DELETE CASCADE,
    seq integer NOT NULL,
    code text COLLATE "C" NOT NULL,
    phrase text,
    match text,
    match_key text COLLATE "C",
    message boolean NOT NULL,
    methods text[] COLLATE "C" NOT NULL,
    category text NOT NULL,
    retry text NOT NULL,
    fault text,
    sip text,
    q850 integer,
    q850_asterisk integer,
    q850_freeswitch integer,
    name text,
    deprecated boolean NOT NULL,
    note text,
    original_lang text NOT NULL,
    text_uk text NOT NULL,
    text_ru text NOT NULL,
    text_en text NOT NULL,
    code_exact boolean NOT NULL,
    general_exact boolean NOT NULL,
    PRIMARY KEY (catalog, seq)
);
CREATE INDEX IF NOT EXISTS pbx_codes_entry_code ON {S}.pbx_codes_entry (catalog, code);
CREATE INDEX IF NOT EXISTS pbx_codes_entry_message ON {S}.pbx_codes_entry (catalog, seq) WHERE message;
CREATE TABLE IF NOT EXISTS {S}.pbx_codes_class (
    catalog text COLLATE "C" NOT NULL REFERENCES {S}.pbx_codes_catalog (id) ON DELETE CASCADE,
    pattern text COLLATE "C" NOT NULL,
    rank integer NOT NULL,
    low numeric,
    high numeric,
    entry_seq integer NOT NULL,
    PRIMARY KEY (catalog, pattern)
);
COMMENT ON TABLE {S}.pbx_codes_entry IS
    'pbx-codes catalog entries; code_exact/general_exact: the code''s plain entries (all / without methods) agree';
"""

# Python's str rules, with its Unicode tables (see sql_unicode). COLLATE "C": byte-wise and allowed with
# regexes and substring search even when a CDR column has a nondeterministic collation.
_HELPERS = """\
CREATE OR REPLACE FUNCTION {S}.pbx_codes_fold(phrase text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS {FOLD};
CREATE OR REPLACE FUNCTION {S}.pbx_codes_strip(phrase text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS {STRIP};
CREATE OR REPLACE FUNCTION {S}.pbx_codes_number(code text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS {NUMBER};
CREATE OR REPLACE FUNCTION {S}.pbx_codes_isdigit(code text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS {ISDIGIT};
CREATE OR REPLACE FUNCTION {S}.pbx_codes_failing_leg(pair text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS {FAILING_LEG};
"""

_FAILING_LEG = """\
SELECT CASE WHEN strpos(pair, '/') = 0 THEN NULL
            WHEN left(pair, 1) = '2' AND substr(pair, strpos(pair, '/') + 1) NOT IN ('', '0')
                THEN substr(pair, strpos(pair, '/') + 1)
            ELSE nullif(split_part(pair, '/', 1), '') END"""

_ENTRY_FIELDS = ("e.category, e.retry, e.fault, e.sip, e.q850, e.text_uk, e.text_ru, e.text_en, e.original_lang")

# One ranked query (inlined by the planner into the caller's query): every candidate answer gets the resolver's
# precedence as (pos, step, rank, seq) and the first one wins.
_RESOLVE = """\
WITH obs AS (
    SELECT p_code COLLATE "C" AS code,
           CASE WHEN p_phrase <> '' THEN {S}.pbx_codes_strip(p_phrase) END AS phrase,
           coalesce({S}.pbx_codes_fold(p_phrase), '') COLLATE "C" AS folded,
           coalesce(p_method, '') COLLATE "C" AS method,
           CASE WHEN p_q850 IS NOT NULL THEN p_q850
                WHEN p_code <> '' AND EXISTS (SELECT FROM {S}.pbx_codes_catalog c
                                              WHERE c.id = p_catalog COLLATE "C" AND c.code_space = 'q850')
                    THEN {S}.pbx_codes_number(p_code) END AS q850
), first AS (  -- the catalog named, else the default
    SELECT c.chain FROM {S}.pbx_codes_catalog c
    WHERE c.id = p_catalog COLLATE "C" OR c.id = {DEFAULT}
    ORDER BY (c.id = p_catalog COLLATE "C") IS TRUE DESC LIMIT 1
), chain AS (  -- each catalog of the fallback chain with the code in its code space; then the Q.850 cause
    SELECT c.id, ch.pos, c.class_scheme, o.folded, o.method,
           CASE c.code_space
               WHEN 'sip' THEN CASE WHEN strpos(o.code, '/') > 0 THEN {S}.pbx_codes_failing_leg(o.code)
                                    ELSE o.code END
               WHEN 'q850' THEN o.q850::text
               ELSE o.code END COLLATE "C" AS code
    FROM first CROSS JOIN LATERAL unnest(first.chain) WITH ORDINALITY AS ch (id, pos)
    JOIN {S}.pbx_codes_catalog c ON c.id = ch.id CROSS JOIN obs o
    UNION ALL
    SELECT c.id, {Q850_STEP}, c.class_scheme, '', '', o.q850::text COLLATE "C"
    FROM {S}.pbx_codes_catalog c CROSS JOIN obs o
    WHERE c.id = {Q850} AND o.q850 IS NOT NULL
), candidate AS (  -- per catalog, each step's best entry (LIMIT 1 keeps every step an index lookup)
    SELECT ch.pos, ch.id, ch.code, x.*
    FROM chain ch CROSS JOIN LATERAL (
        -- 1. the code's entry for a phrase the observed phrase contains (method-scoped ones for their methods)
        (SELECT 1 AS step, 0 AS rank, e.seq, e.code AS matched, 'phrase' AS match_kind, true AS exact, {ENTRY}
         FROM {S}.pbx_codes_entry e
         WHERE e.catalog = ch.id AND e.code = ch.code AND ch.folded <> '' AND e.match_key IS NOT NULL
           AND strpos(ch.folded, e.match_key) > 0
           AND (ch.method = '' OR e.methods = '{}' OR ch.method = ANY (e.methods))
         ORDER BY e.seq LIMIT 1)
        UNION ALL
        -- 2. a provider message the phrase contains, under any code
        (SELECT 2, 0, e.seq, e.code, 'phrase', true, {ENTRY}
         FROM {S}.pbx_codes_entry e
         WHERE e.catalog = ch.id AND e.message AND ch.folded <> '' AND strpos(ch.folded, e.match_key) > 0
         ORDER BY e.seq LIMIT 1)
        UNION ALL
        -- 3. the code's plain entries, one scoped to the method first; exact when they agree or it is scoped
        (SELECT 3, CASE WHEN ch.method <> '' AND e.methods = '{}' THEN 1 ELSE 0 END AS rank, e.seq, ch.code,
                'code', CASE WHEN ch.method = '' THEN e.code_exact WHEN e.methods <> '{}' THEN true
                             ELSE e.general_exact END, {ENTRY}
         FROM {S}.pbx_codes_entry e
         WHERE e.catalog = ch.id AND e.code = ch.code AND e.match_key IS NULL
           AND (ch.method = '' OR e.methods = '{}' OR ch.method = ANY (e.methods))
         ORDER BY rank, e.seq LIMIT 1)
        UNION ALL
        -- 4. a provider message looked up by its own words
        (SELECT 4, 0, e.seq, ch.code, 'code', true, {ENTRY}
         FROM {S}.pbx_codes_entry e
         WHERE e.catalog = ch.id AND e.code = ch.code AND e.message
         ORDER BY e.seq LIMIT 1)
        UNION ALL
        -- 5. the nearest digit class (2219 -> 221x, 22xx, 2xxx) ...
        (SELECT 5, char_length(k.pattern) - char_length(rtrim(k.pattern, 'x')) AS rank, e.seq, k.pattern,
                'class', false, {ENTRY}
         FROM {S}.pbx_codes_class k
         JOIN {S}.pbx_codes_entry e ON e.catalog = k.catalog AND e.seq = k.entry_seq
         WHERE k.catalog = ch.id AND ch.class_scheme = 'digits' AND {S}.pbx_codes_isdigit(ch.code)
           AND k.pattern = ANY (ARRAY(SELECT left(ch.code, -n) || repeat('x', n)
                                      FROM generate_series(1, char_length(ch.code) - 1) AS n))
         ORDER BY rank LIMIT 1)
        UNION ALL
        -- ... or the first range class holding the number
        (SELECT 5, k.rank, e.seq, k.pattern, 'class', false, {ENTRY}
         FROM {S}.pbx_codes_class k
         JOIN {S}.pbx_codes_entry e ON e.catalog = k.catalog AND e.seq = k.entry_seq
         WHERE k.catalog = ch.id AND ch.class_scheme = 'range'
           AND {S}.pbx_codes_number(ch.code) BETWEEN k.low AND k.high
         ORDER BY k.rank LIMIT 1)
    ) AS x
), answer AS (
    SELECT a.pos, a.step, a.rank, a.seq, a.id AS catalog,
           CASE WHEN a.pos = {Q850_STEP} THEN o.code ELSE a.code END AS code, o.phrase, a.matched,
           a.exact AND a.pos <> {Q850_STEP} AS exact,
           CASE WHEN a.pos = {Q850_STEP} THEN 'q850' ELSE a.match_kind END AS match_kind,
           a.category, a.retry, a.fault, a.sip, a.q850::bigint AS q850, a.text_uk, a.text_ru, a.text_en,
           a.original_lang
    FROM candidate a CROSS JOIN obs o
    UNION ALL  -- 6. nothing knows it
    SELECT {UNKNOWN_STEP}, 0, 0, 0, coalesce((SELECT f.chain[1] FROM first f), ''), o.code, o.phrase, NULL,
           false, 'none', 'unknown', 'no', NULL, o.code, o.q850, {UNKNOWN_UK}, {UNKNOWN_RU}, {UNKNOWN_EN}, NULL
    FROM obs o
)
SELECT catalog, code, phrase, matched, exact, match_kind, category, retry, fault, sip, q850, text_uk, text_ru,
       text_en, original_lang
FROM answer ORDER BY pos, step, rank, seq LIMIT 1"""

_RESOLVE_HEAD = """\
CREATE OR REPLACE FUNCTION {S}.pbx_codes_resolve(
    p_catalog text, p_code text, p_phrase text DEFAULT NULL, p_method text DEFAULT NULL,
    p_q850 bigint DEFAULT NULL)
RETURNS TABLE (catalog text, code text, phrase text, matched text, exact boolean, match_kind text,
               category text, retry text, fault text, sip text, q850 bigint,
               text_uk text, text_ru text, text_en text, original_lang text)
LANGUAGE sql STABLE PARALLEL SAFE ROWS 1
AS {BODY};
COMMENT ON FUNCTION {S}.pbx_codes_resolve(text, text, text, text, bigint) IS
    'pbx-codes: what a code (and reason phrase, API method, Q.850 cause) means, as pbx-codes lookup answers';
"""


def _e(text: str) -> str:
    """An escape-string literal for a regex or other text with backslashes, inside a function body."""
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _helpers(tables: UnicodeTables) -> dict[str, str]:
    ascii_spaces = tuple(p for p in tables.spaces if p < 0x80)
    upper = "".join(chr(c) for c in range(ord("A"), ord("Z") + 1))
    folded = f"translate(phrase COLLATE \"C\", {literal(tables.fold_from)}, {literal(tables.fold_to)})"
    for source, target in tables.fold_multi:
        folded = f"replace({folded}, {literal(source)}, {literal(target)})"
    spaces = regex_class(tables.spaces)
    fold = (
        "SELECT CASE WHEN octet_length(phrase) = char_length(phrase)  -- ASCII: the fast path\n"
        f"    THEN btrim(regexp_replace(translate(phrase COLLATE \"C\", '{upper}', '{upper.lower()}'), "
        f"{_e(regex_class(ascii_spaces) + '+')}, ' ', 'g'), ' ')\n"
        f"    ELSE btrim(regexp_replace({folded}, {_e(spaces + '+')}, ' ', 'g'), ' ') END"
    )
    strip = f"SELECT regexp_replace(phrase COLLATE \"C\", {_e('^' + spaces + '+|' + spaces + '+$')}, '', 'g')"
    number = (
        "SELECT CASE WHEN code COLLATE \"C\" ~ '^[0-9]{1,18}$' THEN code::bigint\n"
        "    WHEN char_length(code) <= 18 AND code COLLATE \"C\" ~ "
        f"{_e('^' + regex_class(tuple(map(ord, tables.decimals))) + '+$')}\n"
        f"    THEN translate(code COLLATE \"C\", {literal(tables.decimals)}, "
        f"{literal(tables.decimal_values)})::bigint END"
    )
    isdigit = f"SELECT code COLLATE \"C\" ~ {_e('^' + regex_class(tables.digits) + '+$')}"
    return {"FOLD": fold, "STRIP": strip, "NUMBER": number, "ISDIGIT": isdigit, "FAILING_LEG": _FAILING_LEG}


def _fill(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


def sql_script(view: ResolverView, ids: Sequence[str] = (), schema: str = "public",
               tables: UnicodeTables | None = None) -> str:
    """The whole script: one transaction that (re)creates the tables' rows of the exported catalogs and the
    functions; rows of other catalogs already in the tables stay."""
    s = identifier(schema)
    chosen = closure(view, ids)
    helpers = _helpers(tables or read_tables())
    unknown = dict(view.unknown_texts)
    resolve_body = _fill(_RESOLVE, {
        "S": s, "DEFAULT": literal(view.default_catalog), "Q850": literal(view.q850_catalog),
        "ENTRY": _ENTRY_FIELDS, "Q850_STEP": str(_Q850_STEP), "UNKNOWN_STEP": str(_UNKNOWN_STEP),
        **{f"UNKNOWN_{lang.upper()}": literal(unknown.get(lang, "")) for lang in LANGS},
    })
    out = [
        f"-- pbx-codes {__version__}: catalogs and pbx_codes_resolve() for PostgreSQL (UTF8 databases)",
        "BEGIN;",
        "SET LOCAL client_encoding = 'UTF8';",
        "SET LOCAL client_min_messages = warning;  -- no notice for each table that already exists",
        "DO $check$ BEGIN IF current_setting('server_encoding') <> 'UTF8' THEN "
        "RAISE EXCEPTION 'pbx-codes catalogs need a UTF8 database, this one is %', "
        "current_setting('server_encoding'); END IF; END $check$;",
        f"CREATE SCHEMA IF NOT EXISTS {s};" if schema != "public" else "",
        _fill(_TABLES, {"S": s}),
        f"DELETE FROM {s}.pbx_codes_catalog WHERE id IN ({', '.join(literal(c.id) for c in chosen)});",
        f"INSERT INTO {s}.pbx_codes_catalog (id, title, source, original_lang, code_space, class_scheme, fallback, "
        "chain) VALUES\n" + ",\n".join(_catalog_row(view, c) for c in chosen) + ";",
    ]
    for catalog in chosen:
        out.append(
            f"INSERT INTO {s}.pbx_codes_entry (catalog, seq, code, phrase, match, match_key, message, methods, "
            "category, retry, fault, sip, q850, q850_asterisk, q850_freeswitch, name, deprecated, note, "
            "original_lang, text_uk, text_ru, text_en, code_exact, general_exact) VALUES\n"
            + ",\n".join(_entry_rows(catalog)) + ";")
        classes = _class_rows(catalog)
        if classes:
            out.append(f"INSERT INTO {s}.pbx_codes_class (catalog, pattern, rank, low, high, entry_seq) VALUES\n"
                       + ",\n".join(classes) + ";")
    out.append(_fill(_HELPERS, {"S": s, **{k: _dollar_quote(v) for k, v in helpers.items()}}))
    out.append(_fill(_RESOLVE_HEAD, {"S": s, "BODY": _dollar_quote(resolve_body)}))
    out.append(f"ANALYZE {s}.pbx_codes_catalog;\nANALYZE {s}.pbx_codes_entry;\nANALYZE {s}.pbx_codes_class;")
    out.append("COMMIT;")
    return "\n".join(part for part in out if part) + "\n"


def view_of(resolver: Resolver) -> ResolverView:
    """The parts of a `Resolver` the SQL needs, with the resolver's own `unknown` texts."""
    from pbx_codes.resolve import Resolver  # the resolver imports the catalog package: import it late

    probe = Resolver(CatalogSet(), default_catalog="")  # no catalog at all: the resolver's `unknown` answer
    unknown = probe.lookup(None).texts
    return ResolverView(resolver.catalogs, resolver.default_catalog, resolver.q850_catalog,
                        tuple((lang, unknown[lang]) for lang in LANGS))


__all__ = ["ResolverView", "SqlExportError", "closure", "fallback_chain", "identifier", "literal", "sql_script",
           "view_of"]
