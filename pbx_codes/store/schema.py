"""The one table of annotated hangups, its numbered migrations, and the row shape both databases share.

SQLite and PostgreSQL run the same numbered migrations; only a few type names differ, and they are filled in per
dialect so that a column means the same thing in both. A row carries `rid`, the leg's identity (`row_identity`):
the same leg gives the same `rid` whichever path reports it (the live listener, the hook endpoint, `replay --store`,
`backfill` from the PBX's own CDRs), so a leg is stored once, and a batch retried after an ambiguous failure (or
replayed from the journal) is written once. Only a row that names no leg gets a random id.
"""
from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pbx_codes.model import LANGS, Annotation
from pbx_codes.store import rollup


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the two databases, and nothing more."""

    name: str
    id_column: str
    real: str
    placeholder: str

    def sql(self, text: str) -> str:
        """Queries are written with `?`; PostgreSQL's driver wants `%s` (no query here has a literal `?` or `%`)."""
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def floor_int(self, expr: str) -> str:
        """Whole part of a non-negative number: SQLite's CAST truncates, PostgreSQL's rounds."""
        return f"CAST(({expr}) AS INTEGER)" if self.name == "sqlite" else f"CAST(FLOOR({expr}) AS INTEGER)"


SQLITE = Dialect("sqlite", "INTEGER PRIMARY KEY AUTOINCREMENT", "REAL", "?")
POSTGRES = Dialect("postgresql", "BIGSERIAL PRIMARY KEY", "DOUBLE PRECISION", "%s")

COLUMNS: tuple[str, ...] = (
    "rid", "ts", "stored_at", "pbx", "linkedid", "uniqueid", "channel", "trunk", "number", "catalog", "code",
    "phrase", "provider_code", "method", "matched", "exact", "match_kind", "category", "retry", "fault", "hangup_by",
    "sip", "q850", "observed_q850", "dial_status", "original_lang", "text_uk", "text_ru", "text_en",
    # migration 3: how the leg ended, its place among the call's attempts, and its timings (trunk quality)
    "outcome", "attempt", "pbx_cause", "started_at", "progress_at", "answered_at", "ended_at",
    # migration 4: the agent that saw the leg, and the answer's texts by reference (`reason_texts`), not copied
    "instance", "texts_id",
)
_INT_COLUMNS = frozenset({"exact", "q850", "observed_q850", "attempt"})
_REAL_COLUMNS = frozenset({"ts", "stored_at"})
_OPTIONAL_REAL_COLUMNS = frozenset({"started_at", "progress_at", "answered_at", "ended_at"})
_LATER_COLUMNS = COLUMNS[COLUMNS.index("outcome"):COLUMNS.index("instance")]
TEXT_COLUMNS = ("text_uk", "text_ru", "text_en")
DAY = 86400

#: What names one leg, per PBX, in fields both the live event stream and the PBX's own CDR carry.
#: FreeSWITCH: the leg's UUID (unique everywhere; channel names repeat, e.g. both legs of a failover).
#: Asterisk: the call's linkedid and the dialed channel's name (``PJSIP/trunk-00000001``): the live observer reports
#: the dialed leg, whose uniqueid its CDR row does not hold (the row's uniqueid is the caller's), but the row's
#: linkedid and dstchannel are exactly the live observation's call id and channel. An attempt that created no
#: channel (a trunk its qualify marked down) is named by the call and its attempt number instead.
IDENTITY_FIELDS: Mapping[str, tuple[str, ...]] = {"asterisk": ("call_id", "channel"), "freeswitch": ("leg_id",)}
_DEFAULT_IDENTITY = ("leg_id",)


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered step; statements are templates filled with the dialect's type names."""

    version: int
    description: str
    statements: tuple[str, ...]

    #: PostgreSQL's own statements for this step, when they differ (taken as written, not as templates).
    postgres: tuple[str, ...] | None = None

    def render(self, dialect: Dialect) -> list[str]:
        if dialect.name == "postgresql" and self.postgres is not None:
            return list(self.postgres)
        return [s.format(id=dialect.id_column, real=dialect.real) for s in self.statements]


def _column_defs() -> str:
    defs = []
    for name in COLUMNS[:COLUMNS.index("outcome")]:  # later columns come by their own migration
        if name == "rid":
            defs.append("rid TEXT NOT NULL UNIQUE")
        elif name in _REAL_COLUMNS:
            defs.append(f"{name} {{real}} NOT NULL")
        elif name in _INT_COLUMNS:
            defs.append(f"{name} INTEGER")
        else:
            defs.append(f"{name} TEXT")
    return ", ".join(defs)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "hangups table", (
        f"CREATE TABLE IF NOT EXISTS hangups (id {{id}}, {_column_defs()})",
        "CREATE INDEX IF NOT EXISTS hangups_ts ON hangups (ts)",
        "CREATE INDEX IF NOT EXISTS hangups_linkedid ON hangups (linkedid)",
    )),
    Migration(2, "indexes for the console's filters and the unknown-codes view", (
        "CREATE INDEX IF NOT EXISTS hangups_trunk_ts ON hangups (trunk, ts)",
        "CREATE INDEX IF NOT EXISTS hangups_uniqueid ON hangups (uniqueid)",
        "CREATE INDEX IF NOT EXISTS hangups_match_kind ON hangups (match_kind, ts)",
    )),
    Migration(3, "outcome, attempt order, PBX cause name and leg timings", tuple(
        f"ALTER TABLE hangups ADD COLUMN {name} "
        + ("{real}" if name in _OPTIONAL_REAL_COLUMNS else "INTEGER" if name in _INT_COLUMNS else "TEXT")
        for name in _LATER_COLUMNS)),
)

#: Rows whose code no catalog knew exactly, counted per day as they are written (by a trigger, so a row stored
#: twice is counted once): the unknown-codes view reads this small table instead of scanning every row.
_UNKNOWN_KEY = ("day", "instance", "trunk", "catalog", "code", "phrase", "match_kind", "matched", "category",
                "retry", "texts_id")
_UNKNOWN_WHEN = "NEW.match_kind IN ('class', 'none') OR NEW.category = 'unknown'"


def _unknown_table(real: str) -> str:
    keys = ", ".join(f"{k} TEXT NOT NULL DEFAULT ''" if k != "day" else "day INTEGER NOT NULL" for k in _UNKNOWN_KEY)
    return (f"CREATE TABLE IF NOT EXISTS unknown_seen ({keys}, n INTEGER NOT NULL, last_seen {real} NOT NULL, "
            f"PRIMARY KEY ({', '.join(_UNKNOWN_KEY)}))")


def _unknown_upsert(day_expr: str, greatest: str) -> str:
    values = ", ".join([day_expr, *(f"COALESCE(NEW.{k}, '')" for k in _UNKNOWN_KEY[1:])])
    return (f"INSERT INTO unknown_seen ({', '.join(_UNKNOWN_KEY)}, n, last_seen) VALUES ({values}, 1, NEW.ts) "
            f"ON CONFLICT ({', '.join(_UNKNOWN_KEY)}) DO UPDATE SET n = unknown_seen.n + 1, "
            f"last_seen = {greatest}(unknown_seen.last_seen, excluded.last_seen)")


_REASON_TEXTS = ("CREATE TABLE IF NOT EXISTS reason_texts (texts_id TEXT PRIMARY KEY, catalog TEXT, matched TEXT, "
                 "original_lang TEXT, uk TEXT, ru TEXT, en TEXT, first_seen {real} NOT NULL)")
_PG_DATA_COLUMNS = ", ".join(c for c in COLUMNS)
_PG_PARTITIONED = (
    "CREATE TABLE hangups (id BIGINT NOT NULL DEFAULT nextval('hangups_id_seq'), "
    + ", ".join(d.replace("rid TEXT NOT NULL UNIQUE", "rid TEXT NOT NULL").replace("{real}", "DOUBLE PRECISION")
                for d in _column_defs().split(", "))
    + ", " + ", ".join(f"{c} " + ("DOUBLE PRECISION" if c in _OPTIONAL_REAL_COLUMNS else "INTEGER"
                                  if c in _INT_COLUMNS else "TEXT") for c in COLUMNS[COLUMNS.index("outcome"):])
    + ", day INTEGER NOT NULL, CONSTRAINT hangups_rid_day UNIQUE (rid, day)) PARTITION BY RANGE (day)")

MIGRATIONS = MIGRATIONS + (
    Migration(4, "instance, texts by reference, unknown codes counted as written; PostgreSQL: daily partitions", (
        "ALTER TABLE hangups ADD COLUMN instance TEXT",
        "ALTER TABLE hangups ADD COLUMN texts_id TEXT",
        _REASON_TEXTS,
        _unknown_table("{real}"),
        "CREATE INDEX IF NOT EXISTS hangups_instance_ts ON hangups (instance, ts)",
        "CREATE INDEX IF NOT EXISTS hangups_category_ts ON hangups (category, ts)",
        "DROP INDEX IF EXISTS hangups_match_kind",
        "DROP INDEX IF EXISTS hangups_uniqueid",
        "INSERT INTO unknown_seen SELECT CAST(ts / 86400 AS INTEGER), COALESCE(instance, ''), COALESCE(trunk, ''), "
        "COALESCE(catalog, ''), COALESCE(code, ''), COALESCE(phrase, ''), COALESCE(match_kind, ''), "
        "COALESCE(matched, ''), COALESCE(category, ''), COALESCE(retry, ''), COALESCE(texts_id, ''), COUNT(*), MAX(ts) "
        "FROM hangups WHERE match_kind IN ('class', 'none') OR category = 'unknown' GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, "
        "9, 10, 11",
        f"CREATE TRIGGER IF NOT EXISTS hangups_unknown AFTER INSERT ON hangups WHEN {_UNKNOWN_WHEN} BEGIN "
        f"{_unknown_upsert('CAST(NEW.ts / 86400 AS INTEGER)', 'MAX')}; END",
    ), postgres=(
        # One table per UTC day (`day` = floor(ts / 86400)): retention drops whole days, queries over a window read
        # only its days. The rows of the unpartitioned table move over once.
        "ALTER SEQUENCE hangups_id_seq OWNED BY NONE",
        "ALTER TABLE hangups RENAME TO hangups_v3",
        "ALTER INDEX hangups_pkey RENAME TO hangups_v3_pkey",
        "ALTER INDEX hangups_rid_key RENAME TO hangups_v3_rid_key",
        *(f"DROP INDEX IF EXISTS {name}" for name in ("hangups_ts", "hangups_linkedid", "hangups_trunk_ts",
                                                       "hangups_uniqueid", "hangups_match_kind")),
        "ALTER TABLE hangups_v3 ADD COLUMN instance TEXT",
        "ALTER TABLE hangups_v3 ADD COLUMN texts_id TEXT",
        _PG_PARTITIONED,
        "ALTER SEQUENCE hangups_id_seq OWNED BY hangups.id",
        "CREATE INDEX hangups_id ON hangups (id)",
        "CREATE INDEX hangups_ts ON hangups (ts)",
        "CREATE INDEX hangups_linkedid ON hangups (linkedid)",
        "CREATE INDEX hangups_trunk_ts ON hangups (trunk, ts)",
        "CREATE INDEX hangups_instance_ts ON hangups (instance, ts)",
        "CREATE INDEX hangups_category_ts ON hangups (category, ts)",
        _REASON_TEXTS.format(real="DOUBLE PRECISION"),
        _unknown_table("DOUBLE PRECISION"),
        "CREATE OR REPLACE FUNCTION pbx_codes_count_unknown() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN "
        + _unknown_upsert("NEW.day", "GREATEST") + "; RETURN NULL; END $fn$",
        "CREATE OR REPLACE TRIGGER hangups_unknown AFTER INSERT ON hangups FOR EACH ROW WHEN ("
        + _UNKNOWN_WHEN + ") EXECUTE FUNCTION pbx_codes_count_unknown()",
        "DO $do$ DECLARE d INTEGER; BEGIN FOR d IN SELECT DISTINCT CAST(FLOOR(ts / 86400) AS INTEGER) FROM hangups_v3 "
        "LOOP EXECUTE format('CREATE TABLE %I PARTITION OF hangups FOR VALUES FROM (%s) TO (%s)', "
        "'hangups_' || to_char(to_timestamp(d * 86400.0) AT TIME ZONE 'UTC', 'YYYYMMDD'), d, d + 1); END LOOP; "
        "END $do$",
        f"INSERT INTO hangups (id, {_PG_DATA_COLUMNS}, day) SELECT id, {_PG_DATA_COLUMNS}, "
        "CAST(FLOOR(ts / 86400) AS INTEGER) FROM hangups_v3",
        "DROP TABLE hangups_v3",
    )),
)
MIGRATIONS = MIGRATIONS + (
    Migration(5, "the trunk quality table's hourly rollup, kept as rows are written",
              tuple(rollup.sqlite_statements(rollup.nearest_ms)),
              postgres=tuple(rollup.postgres_statements(rollup.nearest_ms))),
)
MIGRATIONS = MIGRATIONS + (
    Migration(6, "the rollup's delay histograms in relative buckets (a 6-bit mantissa above 64 ms)",
              tuple(rollup.sqlite_rebucket_statements()), postgres=tuple(rollup.postgres_rebucket_statements())),
)
MIGRATIONS = MIGRATIONS + (
    Migration(7, "the rollup's counts and histograms per 6-hour block and per day too (PostgreSQL)", (),
              postgres=tuple(rollup.postgres_span_statements())),
)
LATEST_VERSION = MIGRATIONS[-1].version


def partition_name(day: int) -> str:
    """`hangups_20261201`: the PostgreSQL table holding one UTC day's rows."""
    return "hangups_" + time.strftime("%Y%m%d", time.gmtime(day * DAY))


def texts_key(catalog: str | None, matched: str | None, lang: str | None, uk: str | None, ru: str | None,
              en: str | None) -> str | None:
    """The id of one answer's texts (`reason_texts`): the same texts from the same catalog entry share one id, and
    a catalog whose texts change gets a new one (old rows keep the words they were shown with)."""
    if not (uk or ru or en):
        return None
    key = "\x1f".join(v or "" for v in (catalog, matched, lang, uk, ru, en))
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def column_type(name: str, real: str = "DOUBLE PRECISION") -> str:
    """The SQL type of one of `COLUMNS` (INTEGER, TEXT or the dialect's `real`)."""
    if name in _REAL_COLUMNS or name in _OPTIONAL_REAL_COLUMNS:
        return real
    return "INTEGER" if name in _INT_COLUMNS else "TEXT"


def stored_values(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The row as it goes into `hangups`: with a `texts_id`, the texts stay in `reason_texts` only."""
    if not row.get("texts_id"):
        return tuple(row[name] for name in COLUMNS)
    return tuple(None if name in TEXT_COLUMNS else row[name] for name in COLUMNS)


def reason_texts(rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """The distinct `reason_texts` records of these rows (texts_id, catalog, matched, original_lang, uk, ru, en)."""
    found: dict[str, tuple[Any, ...]] = {}
    for row in rows:
        tid = row.get("texts_id")
        if tid and tid not in found:
            found[tid] = (tid, row.get("catalog"), row.get("matched"), row.get("original_lang"),
                          row.get("text_uk"), row.get("text_ru"), row.get("text_en"))
    return list(found.values())

SCHEMA_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, description TEXT, " \
                       "applied_at {real} NOT NULL)"


def clean_text(value: Any) -> str | None:
    """Text as both databases accept it: PostgreSQL refuses NUL, and a lone surrogate cannot be encoded as UTF-8."""
    if value is None:
        return None
    text = value if type(value) is str else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)
    return text


def row_identity(pbx: str | None, *, leg_id: str | None = None, call_id: str | None = None,
                 channel: str | None = None, attempt: int | None = None, instance: str | None = None) -> str | None:
    """The `rid` of one PBX leg (32 hex digits), or None when the fields that name a leg are missing. The agent's
    `instance` is part of it: two PBXs of a fleet reuse ids (Asterisk's are its start time and a counter)."""
    fields = {"leg_id": leg_id, "call_id": call_id, "channel": channel}
    names = IDENTITY_FIELDS.get(pbx or "", _DEFAULT_IDENTITY)
    values: list[Any] = [fields[name] for name in names]
    if not all(values):
        if names != _DEFAULT_IDENTITY and leg_id:
            values = [leg_id]
        elif names != _DEFAULT_IDENTITY and call_id and not channel and attempt:
            values = [call_id, "attempt", attempt]
        else:
            return None
    key = "\x1f".join([pbx or "", *([f"@{instance}"] if instance else []), *map(str, values)])
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def row_from_annotation(annotation: Annotation, now: float | None = None) -> dict[str, Any]:
    """The flat record to store: `Annotation.to_dict()`'s fields plus `rid`, `ts` (hangup time, or arrival) and
    `stored_at`. Written out field by field because it runs once per hangup on the event loop."""
    now = time.time() if now is None else now
    obs, res = annotation.observation, annotation.resolution
    texts = res.texts
    t = clean_text
    return {
        "rid": row_identity(obs.pbx, leg_id=obs.leg_id, call_id=obs.call_id, channel=obs.channel,
                            attempt=obs.attempt, instance=obs.instance) or uuid.uuid4().hex,
        "ts": float(obs.timestamp) if obs.timestamp is not None else now,
        "stored_at": now, "pbx": t(obs.pbx or None), "linkedid": t(obs.call_id), "uniqueid": t(obs.leg_id),
        "channel": t(obs.channel), "trunk": t(obs.trunk), "number": t(obs.number), "catalog": t(res.catalog),
        "code": t(res.code), "phrase": t(res.phrase), "provider_code": t(obs.provider_code),
        "method": t(obs.method), "matched": t(res.matched), "exact": int(bool(annotation.exact)),
        "match_kind": t(res.match_kind), "category": res.category.value, "retry": res.retry.value,
        "fault": res.fault.value if res.fault else None, "hangup_by": annotation.hangup_by.value, "sip": t(res.sip),
        "q850": res.q850, "observed_q850": obs.q850, "dial_status": t(obs.dial_status),
        "original_lang": t(res.original_lang), "text_uk": t(texts.get("uk")), "text_ru": t(texts.get("ru")),
        "text_en": t(texts.get("en")),
        "outcome": obs.outcome.value if obs.outcome else None, "attempt": obs.attempt, "pbx_cause": t(obs.pbx_cause),
        "started_at": obs.started_at, "progress_at": obs.progress_at, "answered_at": obs.answered_at,
        "ended_at": obs.ended_at, "instance": t(obs.instance),
        "texts_id": _texts_id(res),
    }


_TEXT_IDS: dict[int, tuple[Any, str | None]] = {}


def _texts_id(res: Any) -> str | None:
    """`texts_key` of a resolution, remembered per resolution object (resolutions are cached and shared)."""
    found = _TEXT_IDS.get(id(res))
    if found is not None and found[0] is res:
        return found[1]
    t = res.texts
    tid = texts_key(res.catalog, res.matched, res.original_lang, t.get("uk"), t.get("ru"), t.get("en"))
    if len(_TEXT_IDS) > 4096:
        _TEXT_IDS.clear()
    _TEXT_IDS[id(res)] = (res, tid)
    return tid


def prepare_row(data: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
    """A row with every column present and typed, from a `to_dict()`-shaped mapping (or a journal line)."""
    now = time.time() if now is None else now
    texts = data.get("texts") or {}
    row: dict[str, Any] = {}
    for name in COLUMNS:
        if name.startswith("text_"):
            value: Any = texts.get(name[5:]) if isinstance(texts, Mapping) else None
            if value is None:
                value = data.get(name)
        else:
            value = data.get(name)
        if name == "texts_id":
            value = clean_text(value) or texts_key(data.get("catalog"), data.get("matched"),
                                                   data.get("original_lang"), row.get("text_uk"),
                                                   row.get("text_ru"), row.get("text_en"))
        elif name == "rid":
            value = str(value) if value else (
                row_identity(data.get("pbx"), leg_id=data.get("uniqueid"), call_id=data.get("linkedid"),
                             channel=data.get("channel"), attempt=data.get("attempt"), instance=data.get("instance"))
                or uuid.uuid4().hex)
        elif name == "ts":
            value = float(value if value is not None else data.get("timestamp") or now)
        elif name == "stored_at":
            value = float(value if value is not None else now)
        elif name == "exact":
            value = None if value is None else int(bool(value))
        elif name in _OPTIONAL_REAL_COLUMNS:
            value = None if value is None else float(value)
        elif name in _INT_COLUMNS:
            value = None if value is None else int(value)
        else:
            value = clean_text(value)
        row[name] = value
    return row


def row_values(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(row[name] for name in COLUMNS)


_PLAIN_AT = tuple((name, i) for i, name in enumerate(COLUMNS) if not name.startswith("text_") and name != "ts")
_EXACT_AT, _TS_AT = COLUMNS.index("exact"), COLUMNS.index("ts")
_TEXTS_AT = tuple((lang, COLUMNS.index(f"text_{lang}")) for lang in LANGS)


def dict_from_record(record: Sequence[Any]) -> dict[str, Any]:
    """A stored row (columns in `COLUMNS` order) in `Annotation.to_dict()`'s shape, plus `rid` and `stored_at`.
    By position, not by name: the console's live feed runs it for every row a fleet writes."""
    out: dict[str, Any] = {name: record[i] for name, i in _PLAIN_AT}
    exact = record[_EXACT_AT]
    out["exact"] = bool(exact) if exact is not None else None
    out["timestamp"] = record[_TS_AT]
    out["texts"] = {lang: record[i] for lang, i in _TEXTS_AT if record[i]}
    return out


INSERT_COLUMNS = ", ".join(COLUMNS)
SELECT_COLUMNS = INSERT_COLUMNS

__all__ = ["COLUMNS", "DAY", "IDENTITY_FIELDS", "TEXT_COLUMNS", "column_type", "partition_name", "reason_texts",
           "stored_values",
           "texts_key", "Dialect", "LATEST_VERSION", "MIGRATIONS", "Migration", "POSTGRES", "SQLITE", "clean_text",
           "dict_from_record", "pending_migrations", "prepare_row", "row_from_annotation", "row_identity", "row_values"]


def pending_migrations(current: int) -> list[Migration]:
    """The steps a database at `current` still needs, in order."""
    return [m for m in MIGRATIONS if m.version > current]
