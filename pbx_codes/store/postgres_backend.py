"""PostgreSQL, for several PBXs writing to one place: psycopg 3's async connections, one for writes, one for reads.

Two connections so a console query never waits behind a batch. A connection that breaks (server restarted, network
gone) is dropped and opened again on the next call; the writer above decides when to call again.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import orjson

from pbx_codes.errors import StoreError
from pbx_codes.store.dsn import safe_error, safe_url
from pbx_codes.store.rollup import HOUR, SEAL_LOCK, SPANS, retire_statements, seal_statements
from pbx_codes.store.schema import (
    COLUMNS,
    DAY,
    INSERT_COLUMNS,
    POSTGRES,
    SCHEMA_VERSION_TABLE,
    TEXT_COLUMNS,
    column_type,
    partition_name,
    pending_migrations,
    reason_texts,
)

#: The channel on which every agent announces the rows it committed: "<first id> <last id> <first day>", a few
#: bytes whatever the batch (NOTIFY payloads are bounded); a console reads the rows themselves by id.
CHANNEL = "pbx_codes_hangups"
#: A batch is one statement of fixed text, whatever its size: the rows travel as one JSON array (serialised in C, read
#: by the server's json_to_recordset), so the driver parses the query once and the server plans it once (a prepared
#: statement), and the same statement announces what it added. On an autocommit connection it is its own
#: transaction: one round trip per batch, and the notification goes out at its commit. A row with a `texts_id` keeps
#: its texts in `reason_texts` only (as `stored_values`).
_RECORD = ", ".join(f"{c} {column_type(c)}" for c in COLUMNS) + ", day INTEGER"
_VALUES = ", ".join(f"CASE WHEN COALESCE(r.texts_id, '') = '' THEN r.{c} END" if c in TEXT_COLUMNS else f"r.{c}"
                    for c in COLUMNS)
#: A leg's row is unique per day (the partition key is part of every unique index), and two writers may give one leg
#: times on both sides of midnight (the live listener's event time, a backfill's CDR end): a row within this many
#: seconds of its day's edge is skipped when its leg is already stored on the neighbouring day.
DAY_EDGE_SECONDS = 600
_ON_NEIGHBOUR_DAY = (
    f"CASE WHEN r.ts - r.day::bigint * {DAY} < {DAY_EDGE_SECONDS} "
    "THEN EXISTS (SELECT 1 FROM hangups h WHERE h.day = r.day - 1 AND h.rid = r.rid) "
    f"WHEN (r.day::bigint + 1) * {DAY} - r.ts < {DAY_EDGE_SECONDS} "
    "THEN EXISTS (SELECT 1 FROM hangups h WHERE h.day = r.day + 1 AND h.rid = r.rid) ELSE false END")
_INSERT = (f"WITH added AS (INSERT INTO hangups ({INSERT_COLUMNS}, day) SELECT {_VALUES}, r.day "
           f"FROM json_to_recordset(%s::json) AS r ({_RECORD}) WHERE NOT ({_ON_NEIGHBOUR_DAY}) "
           "ON CONFLICT (rid, day) DO NOTHING RETURNING id, day), "
           "span AS (SELECT COUNT(*) AS n, MIN(id) AS lo, MAX(id) AS hi, MIN(day) AS d FROM added) "
           f"SELECT n, CASE WHEN n > 0 THEN pg_notify('{CHANNEL}', lo || ' ' || hi || ' ' || d)::text END FROM span")
_INSERT_TEXTS = "INSERT INTO reason_texts (texts_id, catalog, matched, original_lang, uk, ru, en, first_seen) " \
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (texts_id) DO NOTHING"
_PARTITION_LOCK = 0x7062785F64617973
_MIGRATION_LOCK = 0x7062785F636F6465  # any constant: serializes migrators of several programs sharing the database


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise StoreError('the PostgreSQL store needs psycopg 3: pip install "psycopg[binary]"') from exc
    return psycopg


class PostgresBackend:
    """A `postgresql://` URL; connections are opened lazily and reopened after a failure."""

    dialect = POSTGRES

    def __init__(self, url: str, connect_timeout: float = 5.0) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self._psycopg = _psycopg()
        try:  # a URL libpq cannot read is a configuration error now, not a retry loop (nor a traceback) later
            self._psycopg.conninfo.conninfo_to_dict(url)
        except self._psycopg.Error as exc:
            raise ValueError(f"store URL {safe_url(url)} cannot be read: {safe_error(exc, url)}") from None
        self._writer: Any = None
        self._reader: Any = None
        self._write_lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()
        self._migrated = False
        self._days: set[int] = set()  # days whose partition this process has seen exist
        self._texts_known: set[str] = set()

    def describe(self) -> str:
        """The URL without its password (in the user part or the query), for logs."""
        return safe_url(self.url)

    async def _connect(self) -> Any:
        conn = await self._psycopg.AsyncConnection.connect(self.url, autocommit=True,
                                                           connect_timeout=max(1, int(self.connect_timeout)))
        # No JIT: every statement here is short, and PostgreSQL's JIT compiles one whose estimated cost passes
        # jit_above_cost (the quality table's over a week of rollup rows) for ~190 ms, more than it runs.
        await conn.execute("SET jit = off")
        return conn

    async def _migrate(self, conn: Any) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            await conn.execute(SCHEMA_VERSION_TABLE.format(real=POSTGRES.real))
            cur = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            current = (await cur.fetchone())[0]
            for migration in pending_migrations(int(current)):
                for statement in migration.render(POSTGRES):
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_version (version, description, applied_at) VALUES (%s, %s, %s)",
                                   (migration.version, migration.description, time.time()))
        self._migrated = True

    @staticmethod
    def _usable(conn: Any) -> bool:
        return conn is not None and not conn.closed and not conn.broken

    async def _writer_conn(self) -> Any:
        if not self._usable(self._writer):
            await self._discard("_writer")
            conn = await self._connect()
            try:
                if not self._migrated:
                    await self._migrate(conn)
            except BaseException:
                await conn.close()
                raise
            self._writer = conn
        return self._writer

    async def _reader_conn(self) -> Any:
        if not self._usable(self._reader):
            await self._discard("_reader")
            if not self._migrated:
                async with self._write_lock:
                    await self._writer_conn()
            self._reader = await self._connect()
        return self._reader

    async def _discard(self, attr: str) -> None:
        conn = getattr(self, attr)
        setattr(self, attr, None)
        if conn is not None and not conn.closed:
            try:
                await conn.close()
            except Exception:  # a broken connection may fail to close; it is gone either way
                pass

    async def ensure(self) -> None:
        async with self._write_lock:
            await self._writer_conn()

    async def _ensure_days(self, conn: Any, days: set[int]) -> None:
        """Create the partitions of these days if missing (once a day per process: the set remembers them)."""
        wanted = sorted(days - self._days)
        if not wanted:
            return
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK,))  # agents create it once
            for day in wanted:
                await conn.execute(f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF hangups "
                                   f"FOR VALUES FROM ({int(day)}) TO ({int(day) + 1})")
        self._days.update(wanted)

    async def insert(self, rows: Sequence[dict[str, Any]]) -> int:
        """Write rows in one transaction and announce them on `CHANNEL` at commit; rows whose `rid` is already
        stored (for that day) are skipped. Returns the rows added."""
        async with self._write_lock:
            conn = await self._writer_conn()
            try:
                try:
                    return await self._insert(conn, rows)
                except self._psycopg.errors.CheckViolation:  # a partition dropped behind our back: make it again
                    self._days.clear()
                    return await self._insert(conn, rows)
            except BaseException as exc:
                if isinstance(exc, self._psycopg.errors.UndefinedTable):
                    self._migrated = False  # the database came back without our tables (restored, recreated)
                    self._days.clear()
                    self._texts_known.clear()
                if not self._usable(conn) or not self._migrated:
                    await self._discard("_writer")
                raise

    async def _insert(self, conn: Any, rows: Sequence[dict[str, Any]]) -> int:
        days = [int(r["ts"] // DAY) for r in rows]
        await self._ensure_days(conn, set(days))
        texts = [t for t in reason_texts(rows) if t[0] not in self._texts_known]
        if texts:  # before the rows that name them (a retry writes them again: ON CONFLICT keeps one)
            now = time.time()
            async with conn.transaction(), conn.cursor() as cur:
                await cur.executemany(_INSERT_TEXTS, [(*t, now) for t in texts])
            self._texts_known.update(t[0] for t in texts)
        batch = orjson.dumps([{**r, "day": d} for r, d in zip(rows, days, strict=True)])
        cur = await conn.execute(_INSERT, [batch.decode()])
        added = (await cur.fetchone())[0]
        return int(added)

    async def retire(self, cutoff: float) -> int:
        """Retention: drop the partitions of the days that ended before `cutoff` (instant: no row is read),
        and their unknown-code counts. Returns how many days went."""
        first_kept = int(cutoff // DAY)
        async with self._write_lock:
            conn = await self._writer_conn()
            cur = await conn.execute(
                "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'hangups'::regclass")
            old = []
            for name, bound in await cur.fetchall():
                upper = bound.rsplit("(", 1)[-1].rstrip(")' ") if bound else ""
                if upper.lstrip("-").isdigit() and int(upper) <= first_kept:
                    old.append(name)
            async with conn.transaction():
                for name in old:
                    await conn.execute(f'DROP TABLE IF EXISTS "{name}"')
                await conn.execute("DELETE FROM unknown_seen WHERE day < %s", (first_kept,))
                for sql, params in retire_statements(first_kept * 24, spans=True):
                    await conn.execute(POSTGRES.sql(sql), params)
            self._days.difference_update({d for d in self._days if d < first_kept})
            return len(old)

    async def seal(self, now: float) -> int:
        """Seal the quality rollup's blocks that ended by `now`'s hour (`pbx_codes.store.rollup.seal_statements`);
        returns how many block lengths' watermarks moved. The watermarks are looked at first: only when a block has
        ended since is the lock taken (writers wait for it), and once it is held they are read again (another
        agent may have sealed meanwhile)."""
        hour = int(now // HOUR)
        async with self._write_lock:
            conn = await self._writer_conn()
            cur = await conn.execute("SELECT span, until_hour FROM quality_sealed WHERE span = ANY(%s)", (list(SPANS),))
            if all(until >= hour // span * span for span, until in await cur.fetchall()):
                return 0
            sealed = 0
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SEAL_LOCK,))
                cur = await conn.execute(
                    "SELECT span, until_hour FROM quality_sealed WHERE span = ANY(%s) ORDER BY span", (list(SPANS),))
                for span, until in await cur.fetchall():
                    end = hour // span * span
                    if end > until:
                        for statement in seal_statements(span, int(until), end):
                            await conn.execute(statement)
                        sealed += 1
            return sealed

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._read_lock:
            conn = await self._reader_conn()
            try:
                cur = await conn.execute(POSTGRES.sql(sql), tuple(params))
                return list(await cur.fetchall())
            except BaseException:
                if not self._usable(conn):
                    await self._discard("_reader")
                raise

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._write_lock:
            conn = await self._writer_conn()
            try:
                cur = await conn.execute(POSTGRES.sql(sql), tuple(params))
                rowcount: int = cur.rowcount
                return max(rowcount, 0)
            except BaseException:
                if not self._usable(conn):
                    await self._discard("_writer")
                raise

    def is_transient(self, exc: BaseException) -> bool:
        """The server or the network, not the data: retry. A DataError would fail the same way again."""
        psycopg = self._psycopg
        return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError, psycopg.errors.UndefinedTable,
                                OSError, asyncio.TimeoutError))

    async def close(self) -> None:
        await self._discard("_writer")
        await self._discard("_reader")


__all__ = ["CHANNEL", "PostgresBackend"]
