"""The store at fleet size: each row names its agent; PostgreSQL keeps a table per day and retention drops whole days;
unknown codes are counted as rows are written (once per stored row); a database of the previous layout is carried
over with its rows."""
from __future__ import annotations

import time
from typing import Any

import pytest

from pbx_codes.resolve import Resolver
from pbx_codes.sinks.bus import AnnotationBus
from pbx_codes.store import open_store
from pbx_codes.store.postgres_backend import PostgresBackend
from pbx_codes.store.schema import COLUMNS, MIGRATIONS, POSTGRES, partition_name, row_from_annotation
from store.store_support import hangup


async def _partitions(backend: Any) -> list[str]:
    return sorted(r[0] for r in await backend.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'hangups'::regclass"))


@pytest.mark.asyncio
async def test_each_row_names_the_agent_its_bus_belongs_to(store_url: str, tmp_path: Any, resolver: Resolver) -> None:
    bus = AnnotationBus(instance="pbx-odesa")
    store = await open_store(store_url, {"flush_ms": 10, "retention_days": None, "journal": str(tmp_path / "j")})
    store.start(bus)
    try:
        bus.publish(hangup(resolver, leg_id="a"))
        await store.flush(timeout=20)
        store.add(hangup(resolver, leg_id="b"))  # not through the bus: no agent named
        await store.flush(timeout=20)
        assert {r["uniqueid"]: r["instance"] for r in await store.recent()} == {"a": "pbx-odesa", "b": None}
        assert [r["uniqueid"] for r in await store.recent(instance="pbx-odesa")] == ["a"]
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_postgresql_keeps_a_table_per_day_and_retention_drops_whole_days(postgres_url: str, tmp_path: Any,
                                                                               resolver: Resolver) -> None:
    store = await open_store(postgres_url, {"flush_ms": 10, "retention_days": None, "journal": str(tmp_path / "j")})
    keeper = await open_store(postgres_url, {"retention_days": 3, "journal": str(tmp_path / "k")})  # not started
    store.start()
    day = 86400
    today = int(time.time() // day)
    try:
        for age in range(6):  # one leg at noon of each of the last six days, one of them unknown
            store.add(hangup(resolver, leg_id=f"d{age}", timestamp=(today - age) * day + day / 2,
                             sip="499" if age == 5 else "503", phrase=None if age == 5 else "Service Unavailable"))
        await store.flush(timeout=20)
        assert await _partitions(store.backend) == sorted(partition_name(today - a) for a in range(6))
        assert (await store.backend.fetch("SELECT COUNT(*) FROM ONLY hangups"))[0][0] == 0  # rows live in the days
        assert [u["code"] for u in await store.unknown_codes()] == ["499"]
        # The days that ended before now - 3 days (5 and 4 days ago); the day holding that moment stays whole.
        assert await keeper.purge() == 2
        assert await _partitions(store.backend) == sorted(partition_name(today - a) for a in range(4))
        assert sorted(r["uniqueid"] for r in await store.recent()) == ["d0", "d1", "d2", "d3"]
        assert await store.unknown_codes() == []  # its day's count went with its day
        store.add(hangup(resolver, leg_id="late", timestamp=(today - 4) * day + 10))  # a late row: its day again
        await store.flush(timeout=20)
        assert partition_name(today - 4) in await _partitions(store.backend)
    finally:
        await store.close()
        await keeper.close()


@pytest.mark.asyncio
async def test_a_postgresql_batch_announces_the_ids_it_added_once_and_a_batch_of_stored_rows_announces_nothing(
        postgres_url: str, resolver: Resolver) -> None:
    import psycopg

    from pbx_codes.store.postgres_backend import CHANNEL

    backend = PostgresBackend(postgres_url)
    rows = [row_from_annotation(hangup(resolver, leg_id=f"n{n}")) for n in range(3)]
    try:
        await backend.ensure()
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as listener:
            await listener.execute(f"LISTEN {CHANNEL}")
            assert await backend.insert(rows) == 3
            assert await backend.insert(rows) == 0  # a retried batch: every row already stored
            assert await backend.insert([*rows, row_from_annotation(hangup(resolver, leg_id="n3"))]) == 1
            payloads = [note.payload async for note in listener.notifies(timeout=1.0)]
        ids = sorted(r[0] for r in await backend.fetch("SELECT id FROM hangups"))
        first, last = ids[:3], ids[3]
        day = int(rows[0]["ts"] // 86400)
        assert payloads == [f"{first[0]} {first[-1]} {day}", f"{last} {last} {day}"]
    finally:
        await backend.close()


@pytest.mark.asyncio
async def test_unknown_codes_count_each_stored_row_once(store_url: str, tmp_path: Any, resolver: Resolver) -> None:
    store = await open_store(store_url, {"flush_ms": 10, "retention_days": None, "journal": str(tmp_path / "j")})
    store.start()
    try:
        u1, u2 = (hangup(resolver, sip="499", phrase=None, leg_id=leg, trunk="gw-x") for leg in ("u1", "u2"))
        for annotation in (u1, u2, u1, u1):  # u1 reported three times (live, hook, backfill): one row
            store.add(annotation)
        store.add(hangup(resolver, sip="499", phrase=None, leg_id="u3", trunk="gw-y"))
        await store.flush(timeout=20)
        items = {u["trunk"]: u for u in await store.unknown_codes()}
        assert {t: i["count"] for t, i in items.items()} == {"gw-x": 2, "gw-y": 1}
        assert items["gw-x"]["texts"] and items["gw-x"]["match_kind"] in ("class", "none")
        assert [u["trunk"] for u in await store.unknown_codes(trunk="gw-y")] == ["gw-y"]
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_a_postgresql_store_of_the_previous_layout_is_carried_over_with_its_rows(
        postgres_url: str, tmp_path: Any, resolver: Resolver) -> None:
    import psycopg

    old_columns = COLUMNS[:COLUMNS.index("instance")]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT, "
                     "applied_at DOUBLE PRECISION NOT NULL)")
        for migration in MIGRATIONS[:3]:
            for statement in migration.render(POSTGRES):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (%s, %s, 0)", (migration.version, migration.description))
        old = [hangup(resolver, leg_id=f"old{n}", sip=sip, phrase=None, timestamp=1_790_000_000.0 + n * 86400)
               for n, sip in enumerate(("503", "499", "486"))]
        for annotation in old:
            row = row_from_annotation(annotation)
            conn.execute(f"INSERT INTO hangups ({', '.join(old_columns)}) VALUES "
                         f"({', '.join('%s' for _ in old_columns)})", [row[c] for c in old_columns])
    store = await open_store(postgres_url, {"retention_days": None, "journal": str(tmp_path / "j")})
    try:
        assert isinstance(store.backend, PostgresBackend)
        rows = {r["uniqueid"]: r for r in await store.recent()}
        assert sorted(rows) == ["old0", "old1", "old2"]
        assert rows["old1"]["texts"]["en"] and rows["old1"]["code"] == "499"  # old rows keep their own texts
        assert len(await _partitions(store.backend)) == 3
        assert [u["code"] for u in await store.unknown_codes(since=0)] == ["499"]
        store.start()
        store.add(old[0])  # the same leg again: not twice
        await store.flush(timeout=20)
        assert await store.count() == 3
    finally:
        await store.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("first, second", [(-0.5, 0.5), (0.5, -0.5)], ids=["live-then-backfill", "backfill-then-live"])
async def test_a_leg_stored_on_one_side_of_midnight_is_not_stored_again_on_the_other(
        postgres_url: str, resolver: Resolver, first: float, second: float) -> None:
    """The live listener and a backfill may time one leg on both sides of a UTC midnight: one row, either order."""
    backend = PostgresBackend(postgres_url)
    midnight = (int(time.time() // 86400) - 1) * 86400

    def leg(leg_id: str, at: float) -> dict[str, Any]:  # a FreeSWITCH leg: its identity is its uuid alone
        return row_from_annotation(hangup(resolver, leg_id=leg_id, pbx="freeswitch", timestamp=midnight + at))

    try:
        await backend.ensure()
        assert await backend.insert([leg("m1", first)]) == 1
        assert await backend.insert([leg("m1", second), leg("m2", second)]) == 1  # the batch's other leg is stored
        rows = await backend.fetch("SELECT uniqueid, day FROM hangups ORDER BY uniqueid")
        assert rows == [("m1", int((midnight + first) // 86400)), ("m2", int((midnight + second) // 86400))]
    finally:
        await backend.close()
