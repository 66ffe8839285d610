"""The live feed of a whole fleet, read from the shared store: what a central console (`pbx-codes console`) shows.

Every agent announces each commit on PostgreSQL's `NOTIFY` channel with a few bytes (the first and last id and the
first day); this reads those rows by id and publishes them, rebuilt as annotations, on the console's own bus, so
the feed, /metrics and the alerts of the central console work exactly as in an agent. A notification can be lost
(the listening connection drops, the server restarts): a poll of the ids committed over the last seconds finds
any row the notifications did not bring, so the feed stays complete; each row is published once.
SQLite has no notifications: there the poll alone carries the feed.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pbx_codes.model import Annotation, Category, Observation, Outcome, Resolution, Retry, Side
from pbx_codes.sinks.bus import AnnotationBus
from pbx_codes.store.schema import DAY, dict_from_record

log = logging.getLogger("pbx_codes.console")


def _enum(kind: Any, value: Any, default: Any = None) -> Any:
    try:
        return kind(value) if value is not None else default
    except ValueError:
        return default


def annotation_from_row(row: Mapping[str, Any]) -> Annotation:
    """A stored row (`dict_from_record`'s shape, texts filled in) as the annotation the agent published."""
    resolution = Resolution(
        catalog=row.get("catalog") or "", code=row.get("code"), phrase=row.get("phrase"), matched=row.get("matched"),
        exact=bool(row.get("exact")), match_kind=row.get("match_kind") or "none",
        category=_enum(Category, row.get("category"), Category.UNKNOWN),
        retry=_enum(Retry, row.get("retry"), next(iter(Retry))), fault=_enum(Side, row.get("fault")),
        sip=row.get("sip"), q850=row.get("q850"), texts=dict(row.get("texts") or {}),
        original_lang=row.get("original_lang"))
    observation = Observation(
        sip_code=row.get("sip"), phrase=row.get("phrase"), q850=row.get("observed_q850"),
        provider_code=row.get("provider_code"), method=row.get("method"), catalog=row.get("catalog"),
        trunk=row.get("trunk"), hangup_by=_enum(Side, row.get("hangup_by")), pbx=row.get("pbx") or "",
        call_id=row.get("linkedid"), leg_id=row.get("uniqueid"), channel=row.get("channel"),
        number=row.get("number"), dial_status=row.get("dial_status"), timestamp=row.get("timestamp"),
        outcome=_enum(Outcome, row.get("outcome")), attempt=row.get("attempt"), pbx_cause=row.get("pbx_cause"),
        started_at=row.get("started_at"), progress_at=row.get("progress_at"), answered_at=row.get("answered_at"),
        ended_at=row.get("ended_at"), instance=row.get("instance"))
    return Annotation(resolution, observation)


@dataclass(slots=True)
class FeedStats:
    notified: int = 0
    published: int = 0
    recovered: int = 0  # rows the poll found that no notification brought
    reads: int = 0  # announced ranges read
    listening: bool = False


@dataclass(slots=True)
class StoreFeed:
    """Reads the rows every agent commits and publishes them on `bus`; `run()` until cancelled."""

    store: Any
    bus: AnnotationBus
    poll_interval: float = 2.0
    #: How far back (seconds) the poll looks for ids: a transaction commits within this of taking its ids.
    lookback: float = 10.0
    stats: FeedStats = field(default_factory=FeedStats)
    _seen: set[int] = field(default_factory=set)
    _marks: deque[tuple[float, int]] = field(default_factory=deque)  # (when, highest id published by then)
    _floor: int = 0  # every id at or below it is either published or will never come
    _high: int = 0
    _ranges: list[tuple[int, int, int]] = field(default_factory=list)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def _partitioned(self) -> bool:
        name: str = self.store.dialect.name
        return name == "postgresql"

    def _day_clause(self) -> str:
        return " AND day >= ?" if self._partitioned else ""

    async def start_point(self) -> None:
        """The feed starts now: rows already stored are history (the API's), not live events."""
        records = await self.store.backend.fetch("SELECT MAX(id) FROM hangups")
        self._floor = self._high = int(records[0][0] or 0)
        self._marks.append((time.monotonic(), self._high))

    async def run(self) -> None:
        delay = 0.2
        while True:  # a store that does not answer yet: the console serves (503 from the API) and keeps trying
            try:
                await self.start_point()
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("console feed: the store does not answer (%s); retrying", self.store.explain(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        tasks = [asyncio.create_task(self._poll_loop(), name="pbx-codes-feed-poll"),
                 asyncio.create_task(self._read_loop(), name="pbx-codes-feed-read")]
        if self._partitioned:
            tasks.append(asyncio.create_task(self._listen_loop(), name="pbx-codes-feed-listen"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- notifications ---------------------------------------------------------------------------------------------

    def on_payload(self, payload: str) -> None:
        """One agent's "<first id> <last id> <first day>"; anything else is ignored (the poll covers it)."""
        parts = payload.split()
        if len(parts) != 3 or not all(p.lstrip("-").isdigit() for p in parts):
            return
        first, last, day = (int(p) for p in parts)
        if last < first or last - first > 1_000_000:
            return
        self.stats.notified += 1
        self._ranges.append((first, last, day))
        self._wake.set()

    async def _listen_loop(self) -> None:
        from pbx_codes.store.postgres_backend import CHANNEL

        psycopg = self.store.backend._psycopg
        delay = 0.2
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.store.backend.url, autocommit=True,
                                                             connect_timeout=5)
                try:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.stats.listening, delay = True, 0.2
                    self._wake.set()  # what was committed while not listening: the poll reads it now
                    async for note in conn.notifies():
                        self.on_payload(note.payload)
                finally:
                    self.stats.listening = False
                    with contextlib.suppress(Exception):
                        await conn.close()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("console feed: listening to the store failed (%s); polling until back",
                            self.store.explain(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _read_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            ranges, self._ranges = self._ranges, []
            if not ranges:
                continue
            first, last, day = min(r[0] for r in ranges), max(r[1] for r in ranges), min(r[2] for r in ranges)
            try:
                day_params = [day] if self._partitioned else []
                records = await self.store.backend.fetch(
                    f"SELECT id, {_select()} FROM hangups WHERE id BETWEEN ? AND ?{self._day_clause()} ORDER BY id",
                    [max(first, self._floor + 1), last, *day_params])
                await self._publish(records)
                self.stats.reads += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the poll brings these rows once the store answers again
                log.debug("console feed: reading announced rows failed: %s", self.store.explain(exc))

    # -- the polling fallback --------------------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("console feed: poll failed: %s", self.store.explain(exc))

    async def poll(self) -> int:
        """Publish every committed row the notifications did not bring; returns how many it found."""
        now = time.monotonic()
        while len(self._marks) > 1 and self._marks[1][0] <= now - self.lookback:
            self._marks.popleft()
        floor = self._marks[0][1] if self._marks[0][0] <= now - self.lookback else self._floor
        floor = max(floor, self._floor)
        day_params = [int((time.time() - self.lookback - 60) // DAY)] if self._partitioned else []
        ids = [r[0] for r in await self.store.backend.fetch(
            f"SELECT id FROM hangups WHERE id > ?{self._day_clause()}", [floor, *day_params])]
        missing = sorted(i for i in ids if i not in self._seen)
        found = 0
        for start in range(0, len(missing), 500):
            chunk = missing[start:start + 500]
            records = await self.store.backend.fetch(
                f"SELECT id, {_select()} FROM hangups WHERE id IN ({', '.join('?' for _ in chunk)})"
                f"{self._day_clause()} ORDER BY id", [*chunk, *day_params])
            found += await self._publish(records, recovered=True)
        # Ids at or below the floor can no longer come: forget them.
        self._floor = floor
        self._seen = {i for i in self._seen if i > floor}
        self._marks.append((now, self._high))
        return found

    async def _publish(self, records: Sequence[Sequence[Any]], recovered: bool = False) -> int:
        async with self._lock:  # the reader and the poll publish in turn, each row once
            fresh = [r for r in records if r[0] not in self._seen and r[0] > self._floor]
            if not fresh:
                return 0
            rows = [dict_from_record(r[1:]) for r in fresh]
            await self.store.with_texts(rows)
            for record, row in zip(fresh, rows):
                self._seen.add(record[0])
                self._high = max(self._high, record[0])
                try:
                    self.bus.publish(annotation_from_row(row))
                except Exception:  # one odd row must not end the feed
                    log.exception("console feed: cannot show row %s", record[0])
            self.stats.published += len(fresh)
            if recovered:
                self.stats.recovered += len(fresh)
            return len(fresh)


def _select() -> str:
    from pbx_codes.store.schema import SELECT_COLUMNS
    return SELECT_COLUMNS


__all__ = ["FeedStats", "StoreFeed", "annotation_from_row"]
