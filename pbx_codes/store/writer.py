"""Batched, loss-averse writing: rows wait in memory, are committed every N rows or M ms, and survive an outage.

A burst costs the event loop only a list append per row; the database sees one transaction per batch. When the
database is away, rows stay in memory up to a bound and the oldest beyond it go to the journal; the writer retries
with exponential backoff, replays the journal first once the database answers, and on close puts whatever it could
not write into the journal, so the next start writes it.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pbx_codes.store.journal import Journal
from pbx_codes.store.schema import prepare_row

log = logging.getLogger("pbx_codes.store")


class WritableBackend(Protocol):
    async def insert(self, rows: Sequence[dict[str, Any]]) -> int: ...

    def is_transient(self, exc: BaseException) -> bool: ...

    def describe(self) -> str: ...


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


@dataclass(slots=True)
class WriterStats:
    """Counters for the console's health view and for tests."""

    received: int = 0
    written: int = 0
    batches: int = 0
    spilled: int = 0
    replayed: int = 0
    rejected: int = 0
    dropped: int = 0
    failures: int = 0
    available: bool = True
    outage_since: float | None = None


class BatchWriter:
    """Owns the rows between the bus and the database."""

    def __init__(self, backend: WritableBackend, *, journal: Journal | None, batch_size: int = 500,
                 flush_interval: float = 0.2, max_pending: int = 50_000, retry_initial: float = 0.05,
                 retry_max: float = 5.0, explain: Callable[[BaseException], str] | None = None) -> None:
        self.backend = backend
        # Every database error reaches the log through this: the store passes its URL's redactor.
        self.explain = explain or _first_line
        self.journal = journal
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.max_pending = max(self.batch_size, max_pending)
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.stats = WriterStats()
        self._pending: deque[dict[str, Any]] = deque()
        self._inflight: list[dict[str, Any]] = []
        self._journal_dirty = bool(journal and journal.has_rows())
        self._kick = asyncio.Event()
        self._full = asyncio.Event()
        self._progress = asyncio.Event()
        self._urgent = 0
        self._delay = retry_initial

    @property
    def pending(self) -> int:
        return len(self._pending) + len(self._inflight)

    def drained(self) -> bool:
        """Nothing waits to be written: not in memory, not in the journal."""
        return not self._pending and not self._inflight and not self._journal_dirty

    def add(self, row: dict[str, Any]) -> None:
        """Queue one row; never waits. Beyond the memory bound the oldest rows go to the journal."""
        self.stats.received += 1
        self._pending.append(row)
        if len(self._pending) > self.max_pending:
            self._spill(self.batch_size)
        if len(self._pending) >= self.batch_size:
            self._full.set()
        self._kick.set()

    def _spill(self, count: int) -> None:
        rows = [self._pending.popleft() for _ in range(min(count, len(self._pending)))]
        if self.journal is None:
            self.stats.dropped += len(rows)
            log.error("store: %d rows dropped: memory bound reached and no journal configured", len(rows))
            return
        try:
            self.journal.append(rows)
        except OSError as exc:
            self.stats.dropped += len(rows)
            log.error("store: %d rows dropped: journal %s cannot be written: %s", len(rows), self.journal.path, exc)
            return
        self.stats.spilled += len(rows)
        self._journal_dirty = True

    async def run(self) -> None:
        """The writer task: wait for rows, write a batch, back off while the database is away."""
        while True:
            if self.drained():
                self._kick.clear()
                self._signal()
                await self._kick.wait()
            if len(self._pending) < self.batch_size and not self._urgent and not self._journal_dirty:
                self._full.clear()
                try:  # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that races its timeout
                    async with asyncio.timeout(self.flush_interval):
                        await self._full.wait()
                except TimeoutError:
                    pass
            ok = await self.write_pass()
            self._signal()
            if ok:
                self._delay = self.retry_initial
            else:
                await asyncio.sleep(self._delay)
                self._delay = min(self._delay * 2, self.retry_max)

    def _signal(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()

    async def write_pass(self) -> bool:
        """Replay the journal if it has rows, then write one batch. False when the database is unavailable."""
        try:
            if self._journal_dirty:
                await self._replay()
            if self._pending:
                self._inflight = [self._pending.popleft() for _ in range(min(self.batch_size, len(self._pending)))]
                await self._insert(self._inflight)
                self._inflight = []
        except Exception as exc:  # only transient errors reach here (see _insert)
            if self._inflight:
                self._pending.extendleft(reversed(self._inflight))
                self._inflight = []
                while len(self._pending) > self.max_pending:
                    self._spill(self.batch_size)
            self._unavailable(exc)
            return False
        self._available()
        return True

    async def _insert(self, rows: list[dict[str, Any]]) -> None:
        """Insert rows; a non-transient error isolates the rows that cause it (rejected, logged) and keeps the rest."""
        try:
            await self.backend.insert(rows)
        except Exception as exc:
            if self.backend.is_transient(exc):
                raise
            if len(rows) == 1:
                self.stats.rejected += 1
                kept = ""
                if self.journal is not None:
                    try:
                        self.journal.reject(rows[0])
                        kept = f"; kept in {self.journal.rejected_path}"
                    except OSError:
                        pass
                log.error("store: row %s rejected by the database: %s%s", rows[0].get("rid"), self.explain(exc), kept)
                return
            middle = len(rows) // 2
            await self._insert(rows[:middle])
            await self._insert(rows[middle:])
            return
        self.stats.written += len(rows)
        self.stats.batches += 1

    async def _replay(self) -> None:
        journal = self.journal
        assert journal is not None
        path = await asyncio.to_thread(journal.begin_replay)
        while path is not None:
            chunks = journal.read_chunks(path, self.batch_size)
            while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
                rows = [prepare_row(raw) for raw in chunk]
                await self._insert(rows)
                self.stats.replayed += len(rows)
            await asyncio.to_thread(journal.finish_replay, path)
            log.info("store: journal %s replayed", path)
            path = await asyncio.to_thread(journal.begin_replay)
        self._journal_dirty = False

    def _unavailable(self, exc: BaseException) -> None:
        self.stats.failures += 1
        if self.stats.available:
            self.stats.available = False
            self.stats.outage_since = time.time()
            log.warning("store %s unavailable (%s); keeping rows in memory (up to %d), then in %s",
                        self.backend.describe(), self.explain(exc), self.max_pending,
                        self.journal.path if self.journal else "nowhere")

    def _available(self) -> None:
        if not self.stats.available:
            down = time.time() - (self.stats.outage_since or time.time())
            log.warning("store %s available again after %.1f s; %d rows pending",
                        self.backend.describe(), down, self.pending)
            self.stats.available = True
            self.stats.outage_since = None

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every row added so far is in the database (TimeoutError if it stays away)."""
        self._urgent += 1
        self._kick.set()
        self._full.set()
        try:
            async with asyncio.timeout(timeout):
                while not self.drained():
                    progress = self._progress
                    self._kick.set()
                    await progress.wait()
        finally:
            self._urgent -= 1

    def spill_all(self) -> int:
        """Move every row still in memory to the journal (on close, when the database did not take them)."""
        if self._inflight:
            self._pending.extendleft(reversed(self._inflight))
            self._inflight = []
        count = len(self._pending)
        while self._pending:
            self._spill(self.batch_size)
        return count


__all__ = ["BatchWriter", "WriterStats"]
