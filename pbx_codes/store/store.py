"""The annotation store: every annotated hangup of every PBX, kept for the console, exports and later questions.

`open_store(url)` picks the database from the URL (`sqlite:///path`, `postgresql://...`); `Store.start(bus)` drains a
bus subscription into the batched writer and runs retention; the query methods answer the console's API (see
`pbx_codes.console.ports.ConsoleStore`). `run_store` is the one call `serve` makes.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pbx_codes.config import StoreSection, parse_table
from pbx_codes.errors import ConfigError
from pbx_codes.model import Annotation
from pbx_codes.sinks.bus import AnnotationBus, Subscription
from pbx_codes.store import queries, rollup
from pbx_codes.store.dsn import safe_error
from pbx_codes.store.export import starter_catalog
from pbx_codes.store.journal import Journal
from pbx_codes.store.schema import Dialect, prepare_row, row_from_annotation
from pbx_codes.store.writer import BatchWriter, WriterStats

log = logging.getLogger("pbx_codes.store")
_DRAIN_SLICE = 256


class StoreConfigError(ConfigError):
    """The `[store]` section or the store URL does not fit."""


class Backend(Protocol):
    dialect: Dialect

    def describe(self) -> str: ...

    async def ensure(self) -> None: ...

    async def insert(self, rows: Sequence[dict[str, Any]]) -> int: ...

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    def is_transient(self, exc: BaseException) -> bool: ...

    async def close(self) -> None: ...


DEFAULT_URL = "sqlite:///var/lib/pbx-codes/annotations.db"


#: Seconds between an agent's looks at whether a quality rollup block has ended (`Store.seal`).
SEAL_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """The `[store]` section, checked."""

    url: str = DEFAULT_URL
    batch_size: int = 500
    flush_ms: int = 200
    max_pending: int = 50_000
    journal: str | None = None
    retention_days: float | None = 90.0
    retention_interval: float = 3600.0
    retry_max: float = 5.0
    connect_timeout: float = 5.0
    queue_size: int = 100_000


def parse_store_settings(section: StoreSection | Mapping[str, Any] | None,
                         url: str | None = None) -> StoreSettings:
    """The ``[store]`` section (a table is read through `pbx_codes.config`) as settings; `url` (from the command
    line) overrides the section's."""
    store: StoreSection = parse_table(StoreSection, section, section="store", error=StoreConfigError)
    if store.retention_days is not None and store.retention_days <= 0:
        raise StoreConfigError("[store] retention_days must be a positive number (omit it to keep rows forever)")
    return StoreSettings(
        url=url or store.url or DEFAULT_URL, batch_size=store.batch_size, flush_ms=store.flush_ms,
        max_pending=store.max_pending, journal=store.journal, retention_days=store.retention_days,
        retention_interval=store.retention_interval, retry_max=store.retry_max,
        connect_timeout=store.connect_timeout, queue_size=store.queue_size)


def sqlite_path(url: str) -> str:
    """`sqlite:///var/db/x.db` -> `/var/db/x.db`; `sqlite://x.db` -> `x.db` (relative); `sqlite://:memory:`."""
    rest = url[len("sqlite://"):]
    if rest.startswith("//"):  # sqlite:////abs/path, as SQLAlchemy writes an absolute path
        rest = rest[1:]
    if rest in ("", "/:memory:"):
        rest = ":memory:"
    return rest


def default_journal(url: str) -> str | None:
    """Beside the SQLite file, or in the user's state directory for a server database."""
    if url.startswith("sqlite:"):
        path = sqlite_path(url)
        return None if path == ":memory:" else path + ".journal.jsonl"
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "pbx-codes", "store-journal.jsonl")


def make_backend(url: str, connect_timeout: float = 5.0) -> Backend:
    if url.startswith("sqlite:"):
        from pbx_codes.store.sqlite_backend import SqliteBackend
        return SqliteBackend(sqlite_path(url))
    if url.startswith(("postgresql://", "postgres://")):
        from pbx_codes.store.postgres_backend import PostgresBackend
        try:
            return PostgresBackend(url, connect_timeout)
        except ValueError as exc:
            raise StoreConfigError(str(exc)) from None
    raise StoreConfigError(f"store URL must start with sqlite:// or postgresql://, got {url.split(':', 1)[0]!r}")


class Store:
    """Writes annotations in batches and answers the console's queries."""

    def __init__(self, backend: Backend, settings: StoreSettings, journal: Journal | None) -> None:
        self.backend = backend
        self.settings = settings
        self.writer = BatchWriter(backend, journal=journal, batch_size=settings.batch_size,
                                  flush_interval=settings.flush_ms / 1000, max_pending=settings.max_pending,
                                  retry_max=settings.retry_max, explain=self.explain)
        self._tasks: list[asyncio.Task[Any]] = []
        self._bus: AnnotationBus | None = None
        self._sub: Subscription | None = None
        self._texts: dict[str, dict[str, str]] = {}

    def explain(self, exc: BaseException) -> str:
        """A database error as one line for a log or a message: the one place it is redacted (no password piece,
        however the URL spells it)."""
        return safe_error(exc, self.settings.url)

    @property
    def dialect(self) -> Dialect:
        return self.backend.dialect

    @property
    def stats(self) -> WriterStats:
        return self.writer.stats

    # -- writing ---------------------------------------------------------------------------------------------------

    def add(self, annotation: Annotation | Mapping[str, Any], now: float | None = None) -> None:
        """Queue one annotation (or a `to_dict()` row) for the writer; never waits."""
        if isinstance(annotation, Annotation):
            row = row_from_annotation(annotation, now)
        else:
            row = prepare_row(annotation, now)
        self.writer.add(row)

    def start(self, bus: AnnotationBus | None = None) -> None:
        """Start the writer, the retention timer and, with a bus, the task that drains its subscription."""
        if self._tasks:
            return
        self._tasks.append(asyncio.create_task(self.writer.run(), name="pbx-codes-store-writer"))
        if self.settings.retention_days:
            retention = self._every(self.settings.retention_interval, self.purge, "retention")
            self._tasks.append(asyncio.create_task(retention, name="pbx-codes-store-retention"))
        if getattr(self.backend, "seal", None) is not None:
            sealing = self._every(SEAL_INTERVAL, self.seal, "sealing the quality rollup's blocks")
            self._tasks.append(asyncio.create_task(sealing, name="pbx-codes-store-seal"))
        if bus is not None:
            self._bus = bus
            self._sub = bus.subscribe("store", maxsize=self.settings.queue_size)
            self._tasks.append(asyncio.create_task(self._drain(self._sub), name="pbx-codes-store-drain"))

    async def _drain(self, sub: Subscription) -> None:
        queue = sub.queue
        while True:
            self.add(await queue.get())
            for _ in range(_DRAIN_SLICE):  # a burst in slices: others (listeners) run between them
                if queue.empty():
                    break
                self.add(queue.get_nowait())
            else:
                await asyncio.sleep(0)

    def _drain_now(self) -> None:
        if self._sub is not None:
            while not self._sub.queue.empty():
                self.add(self._sub.queue.get_nowait())

    async def _drain_queued(self) -> None:
        """Take what the bus already queued, in slices, yielding between them."""
        if self._sub is None:
            return
        queue = self._sub.queue
        while not queue.empty():
            for _ in range(_DRAIN_SLICE):
                if queue.empty():
                    break
                self.add(queue.get_nowait())
            await asyncio.sleep(0)

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every annotation published so far is in the database (TimeoutError if it stays away)."""
        await self._drain_queued()
        await self.writer.flush(timeout)

    async def close(self, timeout: float = 5.0) -> None:
        """Write what can be written within `timeout`, put the rest in the journal, close the database."""
        self._drain_now()
        if self._bus is not None and self._sub is not None:
            self._bus.unsubscribe(self._sub)
        if self._tasks:
            with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                await self.writer.flush(timeout)
        for task in self._tasks:
            task.cancel()
        if self._tasks:  # bounded: a task that ignored its cancel must not hang shutdown; its rows go to the journal
            _, stuck = await asyncio.wait(self._tasks, timeout=timeout)
            if stuck:
                log.error("store: %d task(s) did not stop within %.1f s", len(stuck), timeout)
        self._tasks.clear()
        left = self.writer.spill_all()
        if left:
            log.warning("store: %d rows not written before close went to the journal", left)
        await self.backend.close()

    def abandon(self) -> None:
        """Stop the tasks without writing or journaling anything: what a crash does (for tests and tools)."""
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()

    async def purge(self, now: float | None = None) -> int:
        """Delete rows older than the retention; returns how many went."""
        if not self.settings.retention_days:
            return 0
        now = time.time() if now is None else now
        cutoff = now - float(self.settings.retention_days) * 86400
        retire = getattr(self.backend, "retire", None)
        if retire is not None:  # PostgreSQL: whole days' partitions dropped, no row read
            days: int = await retire(cutoff)
            if days:
                log.info("store: retention dropped %d day(s) older than %s days", days, self.settings.retention_days)
            return days
        sql, params = queries.older_than(cutoff)
        deleted = await self.backend.execute(sql, params)
        await self.backend.execute(*queries.unknown_older_than(cutoff))
        for statement in rollup.retire_statements(int(cutoff // 3600)):
            await self.backend.execute(*statement)
        if deleted:
            log.info("store: retention removed %d rows older than %s days", deleted, self.settings.retention_days)
        return deleted

    async def seal(self, now: float | None = None) -> int:
        """Seal the quality rollup's blocks that have ended (PostgreSQL; `pbx_codes.store.rollup`); returns how
        many block lengths' watermarks moved. Every agent's store tries each minute: one small read unless a block
        has ended."""
        seal = getattr(self.backend, "seal", None)
        if seal is None:
            return 0
        sealed: int = await seal(time.time() if now is None else now)
        return sealed

    async def _every(self, interval: float, job: Callable[[], Awaitable[object]], what: str) -> None:
        """`job` now and then every `interval` seconds; a failure is logged and the next round tries again (the
        database may be away)."""
        while True:
            try:
                await job()
            except Exception as exc:
                log.warning("store: %s failed: %s", what, self.explain(exc))
            await asyncio.sleep(interval)

    # -- the console's queries -------------------------------------------------------------------------------------

    async def _fetch(self, query: queries.Query) -> list[tuple[Any, ...]]:
        sql, params = query
        return await self.backend.fetch(sql, params)

    async def texts_of(self, ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """The texts of these answers (`reason_texts`), read once per process and kept: the table only grows."""
        missing = sorted({i for i in ids if i and i not in self._texts})
        for start in range(0, len(missing), 500):
            for tid, uk, ru, en in await self._fetch(queries.texts(missing[start:start + 500])):
                if len(self._texts) > 100_000:
                    self._texts.clear()
                self._texts[tid] = {k: v for k, v in (("uk", uk), ("ru", ru), ("en", en)) if v}
        return {i: self._texts.get(i, {}) for i in ids if i}

    async def with_texts(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows whose texts live in `reason_texts` get them back, in the shape `Annotation.to_dict()` has."""
        found = await self.texts_of([r["texts_id"] for r in rows if r.get("texts_id") and not r.get("texts")])
        for row in rows:
            if not row.get("texts") and row.get("texts_id"):
                row["texts"] = dict(found.get(row["texts_id"], {}))
        return rows

    async def recent(self, *, limit: int = 100, pbx: str | None = None, trunk: str | None = None,
                     category: str | None = None, code: str | None = None, search: str | None = None,
                     instance: str | None = None) -> list[dict[str, Any]]:
        """Newest first; `search` matches part of a call id, a leg id or a number."""
        return await self.with_texts(queries.rows(await self._fetch(queries.recent(
            limit=limit, pbx=pbx, trunk=trunk, category=category, code=code, search=search, instance=instance,
            now=time.time()))))

    async def call(self, linkedid: str) -> list[dict[str, Any]]:
        """Every stored leg of one call, oldest first."""
        return await self.with_texts(queries.rows(await self._fetch(queries.call(linkedid))))

    async def window_counts(self, windows: Sequence[int] = (60, 300, 900), now: float | None = None,
                            instance: str | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        records = await self._fetch(queries.window_counts(windows, now, instance))
        return queries.shape_window_counts(windows, records)

    async def failure_rate_series(self, bucket: int = 60, buckets: int = 15, now: float | None = None,
                                  instance: str | None = None) -> list[dict[str, Any]]:
        now = time.time() if now is None else now
        records = await self._fetch(queries.failure_rate_series(self.dialect, bucket, buckets, now, instance))
        return queries.shape_series(bucket, buckets, now, records)

    async def unknown_codes(self, trunk: str | None = None, since: float | None = None,
                            instance: str | None = None) -> list[dict[str, Any]]:
        """Codes read by class or by nothing: trunk, catalog, code, phrase, count, last_seen and the fallback."""
        records = await self._fetch(queries.unknown_codes(trunk, since, instance, now=time.time()))
        found = await self.texts_of([r[8] for r in records if r[8]])
        return queries.shape_unknown(records, found.get)

    async def export_unknown(self, trunk: str | None = None, *, code_space: str = "sip",
                             catalog_id: str | None = None) -> str:
        """The unknown codes (of one trunk) as a starter catalog TOML, each entry marked TODO review."""
        return starter_catalog(await self.unknown_codes(trunk), trunk, code_space=code_space, catalog_id=catalog_id)

    async def count(self) -> int:
        return int((await self._fetch(queries.count()))[0][0])


async def open_store(url: str, section: StoreSection | Mapping[str, Any] | None = None) -> Store:
    """A store for `url` with the section's settings; the database is reached (and migrated) if it answers now,
    and otherwise later by the writer, so a store opened while its server is down still accepts annotations."""
    settings = parse_store_settings(section, url)
    backend = make_backend(settings.url, settings.connect_timeout)
    journal_path = settings.journal if settings.journal is not None else default_journal(settings.url)
    journal = Journal(Path(journal_path)) if journal_path else None
    store = Store(backend, settings, journal)
    try:
        await backend.ensure()
    except Exception as exc:
        if not backend.is_transient(exc):  # the database answered "no" (not a database, no rights): say so once
            await backend.close()
            raise StoreConfigError(f"store {backend.describe()}: {store.explain(exc)}") from None
        log.warning("store %s not reachable at start (%s); writing will be retried", backend.describe(),
                    store.explain(exc))
    return store


async def run_store(section: StoreSection | Mapping[str, Any] | None, bus: AnnotationBus, *,
                    url: str | None = None) -> Store:
    """What `serve` calls: open the configured store, subscribe it to the bus, start it. Close with `await close()`."""
    settings = parse_store_settings(section, url)
    store = await open_store(settings.url, section)
    store.start(bus)
    return store


__all__ = ["Store", "StoreConfigError", "StoreSettings", "default_journal", "make_backend", "open_store",
           "parse_store_settings", "run_store", "sqlite_path"]
