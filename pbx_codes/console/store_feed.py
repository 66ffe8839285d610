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


_CATEGORIES: dict[Any, Category] = {c.value: c for c in Category}
_RETRIES: dict[Any, Retry] = {r.value: r for r in Retry}
_SIDES: dict[Any, Side] = {s.value: s for s in Side}
_OUTCOMES: dict[Any, Outcome] = {o.value: o for o in Outcome}
_FIRST_RETRY = next(iter(Retry))
#: Unpublished ids below the highest published one that the poll asks for by name; beyond it, every id since the
#: floor (as before a fleet's rate made that tens of thousands every poll).
POLL_GAPS = 500
#: Distinct answers a feed keeps built (a fleet's rows share a few hundred); past it the cache starts again.
RESOLUTIONS_KEPT = 4096


def _member(members: Mapping[Any, Any], value: Any, default: Any = None) -> Any:
    """The enum member whose value is `value` (a stored text), or `default` for None or a value no member has."""
    if value is None:
        return default
    try:
        return members.get(value, default)
    except TypeError:  # unhashable: no member has it
        return default


def annotation_from_row(row: Mapping[str, Any],
                        resolutions: dict[tuple[Any, ...], Resolution] | None = None) -> Annotation:
    """A stored row (`dict_from_record`'s shape, texts filled in) as the annotation the agent published.
    `resolutions` (the caller's, kept between calls) shares one Resolution among the rows with the same answer, as
    the agent's resolver does, instead of building one per row."""
    get = row.get
    texts = get("texts") or {}
    key = (get("catalog"), get("code"), get("phrase"), get("matched"), get("exact"), get("match_kind"),
           get("category"), get("retry"), get("fault"), get("sip"), get("q850"), get("original_lang"),
           tuple(texts.items()))
    resolution = resolutions.get(key) if resolutions is not None else None
    if resolution is None:
        resolution = Resolution(
            catalog=get("catalog") or "", code=get("code"), phrase=get("phrase"), matched=get("matched"),
            exact=bool(get("exact")), match_kind=get("match_kind") or "none",
            category=_member(_CATEGORIES, get("category"), Category.UNKNOWN),
            retry=_member(_RETRIES, get("retry"), _FIRST_RETRY), fault=_member(_SIDES, get("fault")),
            sip=get("sip"), q850=get("q850"), texts=dict(texts), original_lang=get("original_lang"))
        if resolutions is not None:
            if len(resolutions) >= RESOLUTIONS_KEPT:
                resolutions.clear()
            resolutions[key] = resolution
    observation = Observation(
        sip_code=get("sip"), phrase=get("phrase"), q850=get("observed_q850"),
        provider_code=get("provider_code"), method=get("method"), catalog=get("catalog"),
        trunk=get("trunk"), hangup_by=_member(_SIDES, get("hangup_by")), pbx=get("pbx") or "",
        call_id=get("linkedid"), leg_id=get("uniqueid"), channel=get("channel"),
        number=get("number"), dial_status=get("dial_status"), timestamp=get("timestamp"),
        outcome=_member(_OUTCOMES, get("outcome")), attempt=get("attempt"), pbx_cause=get("pbx_cause"),
        started_at=get("started_at"), progress_at=get("progress_at"), answered_at=get("answered_at"),
        ended_at=get("ended_at"), instance=get("instance"))
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
    #: Seconds between two reads of announced rows (a notification after a quiet spell is read at once): a fleet
    #: announces a batch per agent every few milliseconds; read together, they cost one query instead of several.
    read_gap: float = 0.05
    stats: FeedStats = field(default_factory=FeedStats)
    _seen: set[int] = field(default_factory=set)
    _marks: deque[tuple[float, int]] = field(default_factory=deque)  # (when, highest id published by then)
    _floor: int = 0  # every id at or below it is either published or will never come
    _high: int = 0
    _ranges: list[tuple[int, int, int]] = field(default_factory=list)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _resolutions: dict[tuple[Any, ...], Resolution] = field(default_factory=dict)

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
        loop = asyncio.get_running_loop()
        read = float("-inf")  # the first read goes at once
        while True:
            await self._wake.wait()
            pause = read + self.read_gap - loop.time()
            if pause > 0:  # pacing the reads (see read_gap), not waiting for a condition
                await asyncio.sleep(pause)
            read = loop.time()
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
        # Only the ids not published yet: above the highest published, and the gaps below it (ids taken by a
        # transaction still open, or never to come). Seconds of a fleet's ids are tens of thousands; gaps are few.
        high = max(self._high, floor)
        gaps = [i for i in range(floor + 1, high + 1) if i not in self._seen]
        if len(gaps) <= POLL_GAPS:
            wanted = f" OR id IN ({', '.join('?' for _ in gaps)})" if gaps else ""
            ids = [r[0] for r in await self.store.backend.fetch(
                f"SELECT id FROM hangups WHERE (id > ?{wanted}) AND id > ?{self._day_clause()}",
                [high, *gaps, floor, *day_params])]
        else:
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
                    self.bus.publish(annotation_from_row(row, self._resolutions))
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
