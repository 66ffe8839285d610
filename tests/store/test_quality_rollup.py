"""The trunk quality table read from the hourly rollup (whole hours) and the rows (the partial hours at the range's
edges) equals the table computed from every leg, on SQLite and PostgreSQL: every count, class, response bucket,
top failure and mean exactly, the delays' percentiles within half a histogram bucket (0.5 ms plus 1/64 of the
value). A store whose histograms were kept in 1 ms buckets is recounted in the relative ones."""
from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import pytest

from pbx_codes.console.quality import preset_range
from pbx_codes.model import Annotation, Outcome
from pbx_codes.quality.classes import load_table
from pbx_codes.quality.measures import per_trunk
from pbx_codes.quality.source import legs_in_range
from pbx_codes.store import open_store, schema
from pbx_codes.store.quality_sql import (
    PERCENTILE_UNITS,
    QualityCache,
    same_measures,
    trunk_quality,
    trunk_quality_raw,
    within_a_bucket,
)
from pbx_codes.store.rollup import SPANS, bucket_of, signed_cover
from support.seizures import seizure

pytestmark = pytest.mark.asyncio

HOUR = 3600.0
T0 = 1_000_000 * HOUR // HOUR * HOUR  # an hour's start
#: The percentiles a histogram bucket may move (half a bucket: 0.5 ms plus 1/64 of the value).
BOUNDS = PERCENTILE_UNITS


def spread(rng: random.Random, n: int, hours: float = 7, t0: float = T0) -> list[Annotation]:
    """Seizures over about `hours` hours on three trunks of two PBXs and two agents, every outcome shape, delays
    with sub-millisecond parts, some legs with no timings."""
    shapes = [("ok", "200", Outcome.ANSWERED), ("busy", "486", Outcome.CARRIER_FINAL),
              ("no_answer", "480", Outcome.RING_TIMEOUT), ("cancelled", "487", Outcome.CALLER_CANCEL),
              ("capacity", "503", Outcome.CARRIER_FINAL), ("unavailable", "302", Outcome.CARRIER_FINAL),
              ("network", "502", Outcome.UNREACHABLE), ("unknown", "499", Outcome.CARRIER_FINAL),
              ("network", None, Outcome.UNREACHABLE), ("capacity", None, Outcome.PBX_LIMIT)]
    out = []
    for i in range(n):
        category, sip, outcome = shapes[rng.randrange(len(shapes))]
        ann = seizure(f"t{i % 3}", category, sip, start=t0 + rng.uniform(0, hours * HOUR), leg=f"r{i}",
                      pbx=("asterisk", "freeswitch")[i % 2], outcome=outcome,
                      pdd=rng.uniform(0.1, 9.0) if rng.random() > 0.2 else None,
                      answer_after=rng.uniform(9.5, 20.0) if category == "ok" else None,
                      talk=rng.uniform(1.0, 300.0) if category == "ok" else None, end_after=rng.uniform(0.2, 30.0),
                      phrase=rng.choice([None, "Busy Here", "Недостатньо коштів"]))
        obs = replace(ann.observation, instance=f"pbx-{i % 2}")
        if rng.random() < 0.1:  # a PBX that told no timings
            obs = replace(obs, started_at=None, progress_at=None, answered_at=None)
        out.append(replace(ann, observation=obs))
    return out


def agrees(rolled: list[dict[str, Any]], raw: list[dict[str, Any]]) -> bool:
    """Equal but for the percentiles, which may differ by at most half a bucket."""
    if len(rolled) != len(raw):
        return False
    for a, b in zip(rolled, raw):
        for key, bound in BOUNDS.items():
            if not within_a_bucket(a[key], b[key], bound):
                return False
    strip = [{k: v for k, v in r.items() if k not in BOUNDS} for r in rolled]
    return same_measures(strip, [{k: v for k, v in r.items() if k not in BOUNDS} for r in raw])


@contextlib.asynccontextmanager
async def store_before(version: int, url: str, config: dict[str, Any],
                       monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """The store as the release before migration `version` left it (only the migrations below it), started."""
    with monkeypatch.context() as older:
        older.setattr(schema, "MIGRATIONS", tuple(m for m in schema.MIGRATIONS if m.version < version))
        store = await open_store(url, config)
        store.start()
        try:
            yield store
        finally:
            await store.close()


RANGES = [
    (T0 - HOUR, T0 + 8 * HOUR),  # every row, whole hours only
    (T0 + 0.25 * HOUR, T0 + 6.6 * HOUR),  # partial edge hours on both sides
    (T0 + 2 * HOUR, T0 + 4.5 * HOUR),  # starts on an hour, ends inside one
    (T0 + 1.7 * HOUR, T0 + 5 * HOUR),  # starts inside an hour, ends on one
    (T0 + 3.1 * HOUR, T0 + 3.9 * HOUR),  # inside one hour: rows only
    (T0 + 3.9 * HOUR, T0 + 4.2 * HOUR),  # across one boundary, no whole hour
]


async def raw_tables(store: Any, since: float, until: float, **scope: str) -> list[list[dict[str, Any]]]:
    """The table from every leg in Python, and on PostgreSQL from every leg in SQL too."""
    table = load_table()
    legs = await legs_in_range(store, since, until, trunk=scope.get("trunk"), instance=scope.get("instance"))
    out = [per_trunk(legs, table)]
    if store.backend.dialect.name == "postgresql":
        out.append(await trunk_quality_raw(store.backend, table, since, until, **scope))
    return out


async def stored(store: Any, legs: list[Annotation]) -> list[Annotation]:
    """`legs` written to `store` and flushed."""
    for ann in legs:
        store.add(ann)
    await store.flush(timeout=30)
    return legs


@contextlib.contextmanager
def statements_of(backend: Any) -> Iterator[list[str]]:
    """The SQL `backend.fetch` runs inside the block, in order."""
    seen: list[str] = []
    fetch = backend.fetch

    async def recorded(sql: str, params: Any = ()) -> Any:
        seen.append(sql)
        return await fetch(sql, params)

    backend.fetch = recorded
    try:
        yield seen
    finally:
        backend.fetch = fetch


async def test_rollup_with_edge_rows_equals_the_table_from_every_leg(store_url: str, journal_path: str) -> None:
    store = await open_store(store_url, {"flush_ms": 10, "retention_days": None, "journal": journal_path})
    store.start()
    try:
        legs = spread(random.Random(14), 900)
        for ann in legs:
            store.add(ann)
        await store.flush(timeout=30)
        for ann in legs[:300]:  # the same legs again (a replay, a backfill): stored and counted once
            store.add(ann)
        await store.flush(timeout=30)
        table = load_table()
        rolled_hours = await store.backend.fetch("SELECT COUNT(DISTINCT hour), SUM(n) FROM quality_hourly")
        assert int(rolled_hours[0][0]) == 8 and int(rolled_hours[0][1]) == 900
        for since, until in RANGES:
            rolled = await trunk_quality(store.backend, table, since, until)
            assert rolled and sum(r["seizures"] for r in rolled) > 0
            for raw in await raw_tables(store, since, until):
                assert agrees(rolled, raw), (since - T0, until - T0)
        for scope in ({"trunk": "t1"}, {"instance": "pbx-1"}, {"trunk": "t2", "instance": "pbx-0"}):
            since, until = RANGES[1]
            rolled = await trunk_quality(store.backend, table, since, until, **scope)
            assert rolled
            for raw in await raw_tables(store, since, until, **scope):
                assert agrees(rolled, raw), scope
    finally:
        await store.close()


async def test_percentiles_from_whole_millisecond_delays_below_64_ms_are_exact(store_url: str,
                                                                               journal_path: str) -> None:
    store = await open_store(store_url, {"flush_ms": 10, "retention_days": None, "journal": journal_path})
    store.start()
    try:
        rng = random.Random(3)
        for i in range(200):  # start on a whole second: every delay a whole number of milliseconds
            store.add(seizure("t0", "ok", "200", start=T0 + 60 * i, pdd=rng.randrange(1, 60) / 1000,
                              answer_after=0.063, talk=rng.randrange(1, 64) / 1000, leg=f"w{i}"))
        await store.flush(timeout=30)
        table = load_table()
        rolled = await trunk_quality(store.backend, table, T0, T0 + 4 * HOUR)
        for raw in await raw_tables(store, T0, T0 + 4 * HOUR):
            assert same_measures(rolled, raw)
    finally:
        await store.close()


async def test_retention_removes_the_rollup_with_the_rows(store_url: str, journal_path: str) -> None:
    store = await open_store(store_url, {"flush_ms": 10, "retention_days": 1, "journal": journal_path})
    store.start()
    try:
        for i in range(48):  # one seizure an hour for two days
            store.add(seizure("t0", "busy", "486", start=T0 + i * HOUR + 10, pdd=1.5, leg=f"h{i}"))
        await store.flush(timeout=30)
        now = T0 + 48 * HOUR + 20.0
        await store.seal(now=now)  # PostgreSQL: the 6-hour blocks and the day, which retention must remove too
        await store.purge(now=now)
        table = load_table()
        rolled = await trunk_quality(store.backend, table, T0 - HOUR, now)
        for raw in await raw_tables(store, T0 - HOUR, now):
            assert agrees(rolled, raw)
        assert 24 <= rolled[0]["seizures"] < 48  # SQLite keeps whole hours, PostgreSQL whole days
        kept = await store.backend.fetch("SELECT COUNT(*) FROM hangups")
        counted = await store.backend.fetch("SELECT SUM(n) FROM quality_hourly")
        assert int(counted[0][0]) == int(kept[0][0]) == rolled[0]["seizures"]
        if store.backend.dialect.name == "postgresql":
            await sealed_equals_hourly(store)
            blocks = await store.backend.fetch("SELECT span, SUM(n) FROM quality_span GROUP BY 1 ORDER BY 1")
            assert [(int(s), int(n)) for s, n in blocks] == [(6, 36), (24, 24)]  # the kept hours sealed so far
    finally:
        await store.close()


async def test_a_store_with_millisecond_buckets_is_recounted_in_relative_buckets(
        store_url: str, journal_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    config = {"flush_ms": 10, "retention_days": None, "journal": journal_path}
    legs = spread(random.Random(21), 600)
    async with store_before(6, store_url, config, monkeypatch) as store:  # 1 ms buckets
        for ann in legs[:400]:
            store.add(ann)
        await store.flush(timeout=30)
        assert await lower_bounds(store) == {False}  # whole milliseconds, most not a relative bucket's bound
    store = await open_store(store_url, config)
    store.start()
    try:
        versions = await store.backend.fetch("SELECT MAX(version) FROM schema_version")
        assert int(versions[0][0]) == schema.LATEST_VERSION >= 6
        assert await lower_bounds(store) == {True}
        for ann in legs[400:]:  # the replaced trigger counts new rows in the same buckets
            store.add(ann)
        await store.flush(timeout=30)
        assert await lower_bounds(store) == {True}
        counted = await store.backend.fetch("SELECT measure, SUM(n) FROM quality_hourly_delay GROUP BY 1")
        timed = {m: 0 for m, _ in counted}
        table = load_table()
        for since, until in RANGES[:2]:
            rolled = await trunk_quality(store.backend, table, since, until)
            for raw in await raw_tables(store, since, until):
                assert agrees(rolled, raw), (since - T0, until - T0)
        for r in await trunk_quality(store.backend, table, *RANGES[0]):
            for m in timed:
                timed[m] += r["timed"][m]
        assert {m: int(n) for m, n in counted} == timed  # every timed leg counted once, none twice
    finally:
        await store.close()


async def lower_bounds(store: Any) -> set[bool]:
    """Whether the histograms' buckets are relative buckets' lower bounds (those above 64 ms, where they differ)."""
    rows = await store.backend.fetch("SELECT ms FROM quality_hourly_delay WHERE ms >= 64")
    assert len(rows) > 50
    return {all(bucket_of(int(ms)) == int(ms) for (ms,) in rows)}


LONG_RANGES = [
    (T0 + 0.3 * HOUR, T0 + 50.7 * HOUR),  # a day, 6-hour blocks, hours; each edge: its hour less the rows outside
    (T0 + 0.8 * HOUR, T0 + 33.1 * HOUR),  # each edge read from its rows inside the range
    (T0 + 7.5 * HOUR, T0 + 32.5 * HOUR),  # midnight to midnight but for half an hour on each side
    (T0 + 2.2 * HOUR, T0 + 62 * HOUR),  # ends after the newest row: the last hour whole, nothing taken away
]


async def test_days_and_six_hour_blocks_with_subtracted_edges_equal_the_table_from_every_leg(
        store_url: str, journal_path: str) -> None:
    store = await open_store(store_url, {"flush_ms": 10, "retention_days": None, "journal": journal_path})
    store.start()
    pg = store.backend.dialect.name == "postgresql"
    try:
        legs = spread(random.Random(5), 1500, hours=60)
        table = load_table()
        for half, sealed_at in ((legs[:750], T0 + 30.5 * HOUR), (legs[750:], T0 + 90 * HOUR)):
            # the second half holds rows for hours already sealed (late rows) and for hours not yet sealed
            for ann in half:
                store.add(ann)
            await store.flush(timeout=30)
            for since, until in LONG_RANGES:
                rolled = await trunk_quality(store.backend, table, since, until)
                assert sum(r["seizures"] for r in rolled) > 250
                for raw in await raw_tables(store, since, until):
                    assert agrees(rolled, raw), ((since - T0) / HOUR, (until - T0) / HOUR)
            assert await store.seal(now=sealed_at) == (len(SPANS) if pg else 0)
            assert await store.seal(now=sealed_at) == 0  # nothing more has ended
        for scope in ({"trunk": "t1"}, {"instance": "pbx-1"}):
            rolled = await trunk_quality(store.backend, table, *LONG_RANGES[0], **scope)
            for raw in await raw_tables(store, *LONG_RANGES[0], **scope):
                assert agrees(rolled, raw), scope
        for since, until in LONG_RANGES:  # every block sealed
            rolled = await trunk_quality(store.backend, table, since, until)
            for raw in await raw_tables(store, since, until):
                assert agrees(rolled, raw), ((since - T0) / HOUR, (until - T0) / HOUR)
        if pg:  # every seizure in one block of each length, once
            blocks = await store.backend.fetch("SELECT span, SUM(n) FROM quality_span GROUP BY 1 ORDER BY 1")
            assert [(int(s), int(n)) for s, n in blocks] == [(span, 1500) for span in SPANS]
            timed = await store.backend.fetch("SELECT span, SUM(n) FROM quality_span_delay GROUP BY 1 ORDER BY 1")
            hourly = await store.backend.fetch("SELECT SUM(n) FROM quality_hourly_delay")
            assert [int(n) for _, n in timed] == [int(hourly[0][0])] * len(SPANS)
    finally:
        await store.close()


async def blocks_sealed(store: Any, now: float) -> bool:
    """Whether the watermarks stand at `now`'s block boundaries."""
    rows = await store.backend.fetch("SELECT span, until_hour FROM quality_sealed")
    hour = int(now // HOUR)
    return len(rows) == len(SPANS) and all(int(u) == hour // int(s) * int(s) for s, u in rows)


async def sealed_equals_hourly(store: Any) -> None:
    """Each length's sealed blocks hold exactly what the hourly rollup holds below its watermark."""
    for span, until in await store.backend.fetch("SELECT span, until_hour FROM quality_sealed"):
        for blocks, hours, column in (("quality_span", "quality_hourly", "n"),
                                      ("quality_span_delay", "quality_hourly_delay", "n")):
            got = await store.backend.fetch(f"SELECT COALESCE(SUM({column}), 0) FROM {blocks} WHERE span = ?",
                                            [int(span)])
            want = await store.backend.fetch(f"SELECT COALESCE(SUM({column}), 0) FROM {hours} WHERE hour < ?",
                                             [int(until)])
            assert int(got[0][0]) == int(want[0][0]), (span, blocks)


async def test_an_existing_postgresql_rollup_is_sealed_into_blocks_and_late_rows_reach_them(
        postgres_url: str, journal_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    config = {"flush_ms": 10, "retention_days": None, "journal": journal_path}
    past = (int(time.time() // HOUR) // 24 - 3) * 24 * HOUR  # three days ago: the migration seals what has ended
    legs = spread(random.Random(8), 900, hours=48, t0=past)
    async with store_before(7, postgres_url, config, monkeypatch) as store:  # hours only
        for ann in legs[:600]:
            store.add(ann)
        await store.flush(timeout=30)
    store = await open_store(postgres_url, config)
    store.start()
    try:
        await store.flush(timeout=30)  # migrated
        assert await blocks_sealed(store, time.time())
        await sealed_equals_hourly(store)
        for ann in legs[600:]:  # late rows into sealed blocks, counted there by the trigger
            store.add(ann)
        await store.flush(timeout=30)
        await sealed_equals_hourly(store)
        blocks = await store.backend.fetch("SELECT span, SUM(n) FROM quality_span GROUP BY 1 ORDER BY 1")
        assert [(int(s), int(n)) for s, n in blocks] == [(span, 900) for span in SPANS]  # every leg in sealed blocks
        table = load_table()
        for since, until in ((past + 0.4 * HOUR, past + 47.2 * HOUR), (past - HOUR, time.time())):
            rolled = await trunk_quality(store.backend, table, since, until)
            for raw in await raw_tables(store, since, until):
                assert agrees(rolled, raw), ((since - past) / HOUR, (until - past) / HOUR)
    finally:
        await store.close()


async def test_sealing_while_agents_write_loses_and_doubles_nothing(postgres_url: str, tmp_path: Any) -> None:
    """Writers into the hours being sealed, and sealers moving the watermark meanwhile: every block holds what its
    hours hold (the advisory lock keeps each batch wholly before or wholly after a seal)."""
    stores = [await open_store(postgres_url, {"flush_ms": 5, "batch_size": 20, "retention_days": None,
                                              "journal": str(tmp_path / f"j{i}")}) for i in range(3)]
    for store in stores:
        store.start()
    try:
        legs = spread(random.Random(13), 1200, hours=30)
        done = asyncio.Event()

        async def write(store: Any, part: list[Annotation]) -> None:
            for i, ann in enumerate(part):
                store.add(ann)
                if i % 20 == 0:
                    await store.flush(timeout=30)
            await store.flush(timeout=30)

        async def seal_meanwhile() -> None:
            hour = 0.0
            while not done.is_set():
                hour = min(hour + 1, 31)
                await stores[0].seal(now=T0 + hour * HOUR)
                await asyncio.sleep(0)

        sealer = asyncio.create_task(seal_meanwhile())
        await asyncio.gather(*(write(store, legs[i::3]) for i, store in enumerate(stores)))
        done.set()
        await sealer
        await sealed_equals_hourly(stores[0])
        counted = await stores[0].backend.fetch("SELECT SUM(n) FROM quality_hourly")
        assert int(counted[0][0]) == 1200
    finally:
        for store in stores:
            await store.close()


async def test_percentiles_chosen_from_few_and_signed_units_are_exact(store_url: str, journal_path: str) -> None:
    """Histograms of 1, 2, 3, 20, 21 and 41 whole-millisecond delays below 64 ms (each its own bucket, many legs per
    bucket): the percentiles read through the rollup's hours and sealed blocks, some of them taken away (a day less
    hours, a 6-hour block less hours), equal those over the legs exactly. On PostgreSQL only the buckets holding the
    percentiles' ranks come back from the database."""
    store = await open_store(store_url, {"flush_ms": 10, "retention_days": None, "journal": journal_path})
    store.start()
    pg = store.backend.dialect.name == "postgresql"
    try:
        rng = random.Random(11)
        for k in (1, 2, 3, 20, 21, 41):
            for i in range(k):  # whole seconds: every delay a whole number of milliseconds
                store.add(seizure(f"n{k}", "ok", "200", start=T0 + rng.randrange(0, 30 * 3600), leg=f"n{k}-{i}",
                                  pdd=rng.randrange(1, 9) / 1000, answer_after=0.063, talk=rng.randrange(1, 64) / 1000))
        await store.flush(timeout=30)
        sealed_at = T0 + 31 * HOUR
        await store.seal(now=sealed_at)
        table = load_table()
        sealed = await store.backend.fetch("SELECT span, until_hour FROM quality_sealed") if pg else []
        watermarks = {int(n): int(h) for n, h in sealed}
        taken_away = False
        for since, until in ((T0, T0 + 31 * HOUR), (T0 + 5 * HOUR, T0 + 30 * HOUR), (T0 + 9 * HOUR, T0 + 19 * HOUR),
                             (T0 + 1.5 * HOUR, T0 + 13.2 * HOUR)):
            if pg:
                units = signed_cover(int(since // HOUR), int(until // HOUR), sealed=watermarks)
                taken_away = taken_away or any(sign < 0 for _, _, sign in units)
            rolled = await trunk_quality(store.backend, table, since, until)
            assert rolled
            for raw in await raw_tables(store, since, until):
                assert same_measures(rolled, raw), ((since - T0) / HOUR, (until - T0) / HOUR)
        assert taken_away or not pg
    finally:
        await store.close()


async def test_a_range_from_the_hour_to_now_reads_no_rows(store_url: str, journal_path: str) -> None:
    """The console's preset ranges start on the hour and end now: the table comes from the rollup's whole hours (the
    current one included, nothing lying after now) and blocks; of the rows only the newest after now is looked for."""
    store = await open_store(store_url, {"flush_ms": 10, "retention_days": None, "journal": journal_path})
    store.start()
    try:
        legs = await stored(store, spread(random.Random(17), 600, hours=30))
        now = max(ann.observation.timestamp for ann in legs) + 1.0
        await store.seal(now=now)
        table = load_table()
        for span in (HOUR, 6 * HOUR, 86400.0):
            since, until = preset_range(span, now)
            assert since % HOUR == 0 and since <= now - span < since + HOUR
            with statements_of(store.backend) as statements:
                rolled = await trunk_quality(store.backend, table, since, until)
            read_rows = [s for s in statements if "FROM hangups" in s and not s.startswith("SELECT MAX(ts)")]
            assert read_rows == [], span
            for raw in await raw_tables(store, since, until):
                assert agrees(rolled, raw), span
    finally:
        await store.close()


async def test_the_cached_part_of_a_range_is_read_again_when_a_late_row_reaches_it(store_url: str,
                                                                                    journal_path: str) -> None:
    """A range's settled hours and blocks are merged once and then answered from the process's cache while their
    fingerprint holds; a late row (a backfill's) for one of them changes it, and the table counts the row."""
    store = await open_store(store_url, {"flush_ms": 10, "retention_days": None, "journal": journal_path})
    store.start()
    try:
        await stored(store, spread(random.Random(23), 800, hours=30))
        await store.seal(now=T0 + 31 * HOUR)
        table = load_table()
        since, until = T0 + 2 * HOUR, T0 + 26 * HOUR  # whole hours: every unit settled, no rows read
        cache = QualityCache()
        with statements_of(store.backend) as statements:
            first = await trunk_quality(store.backend, table, since, until, cache=cache)
        assert any("_delay" in s for s in statements)  # merged from the rollup once
        with statements_of(store.backend) as statements:
            again = await trunk_quality(store.backend, table, since, until, cache=cache)
        assert again == first and not any("_delay" in s for s in statements)  # then from the cache
        for raw in await raw_tables(store, since, until):
            assert agrees(first, raw)
        late = seizure("t1", "busy", "486", start=T0 + 10.5 * HOUR, pdd=2.5, leg="late-1", pbx="asterisk")
        store.add(replace(late, observation=replace(late.observation, instance="pbx-1")))
        await store.flush(timeout=30)
        after = await trunk_quality(store.backend, table, since, until, cache=cache)
        assert sum(r["seizures"] for r in after) == sum(r["seizures"] for r in first) + 1
        for raw in await raw_tables(store, since, until):
            assert agrees(after, raw)
    finally:
        await store.close()
