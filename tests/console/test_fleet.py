"""A fleet: several agents (each its own store connection and instance name) write into one real PostgreSQL, and the
central console (`pbx-codes console --store`) shows every agent's hangups live, by instance, with counts per agent
and across the fleet; a lost notification costs nothing (the poll brings the row) and no row is shown twice."""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from console.support import hangup
from pbx_codes.config import Config
from pbx_codes.console.central import run_central
from pbx_codes.console.store_feed import StoreFeed
from pbx_codes.resolve import Resolver
from pbx_codes.sinks.bus import AnnotationBus
from pbx_codes.store import Store, open_store
from support.waiting import wait_until


class Agent:
    """What `serve` runs next to one PBX, as far as the store goes: a named bus and a store draining it."""

    def __init__(self, name: str, store: Store, bus: AnnotationBus) -> None:
        self.name, self.store, self.bus = name, store, bus

    async def publish(self, annotation: Any) -> None:
        self.bus.publish(annotation)
        await self.store.flush(timeout=20)


@pytest_asyncio.fixture
async def agents(postgres_url: str, tmp_path: Any) -> AsyncIterator[list[Agent]]:
    out = []
    for name in ("pbx-kyiv", "pbx-lviv"):
        bus = AnnotationBus(instance=name)
        store = await open_store(postgres_url, {"flush_ms": 10, "retention_days": None,
                                                "journal": str(tmp_path / f"{name}.jsonl")})
        store.start(bus)
        out.append(Agent(name, store, bus))
    yield out
    for agent in out:
        await agent.store.close()


class Central:
    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[dict[str, Any]] = []


async def _collect(session: aiohttp.ClientSession, url: str, into: list[dict[str, Any]],
                   connected: asyncio.Event) -> None:
    async with session.get(url) as response:
        name = ""
        async for raw in response.content:
            line = raw.decode("utf-8").rstrip("\n")
            if line.startswith(": connected"):
                connected.set()
            elif line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name == "hangup":
                into.append(json.loads(line[6:]))


@pytest_asyncio.fixture
async def central(postgres_url: str, agents: list[Agent]) -> AsyncIterator[Central]:
    stop, ports = asyncio.Event(), []
    task = asyncio.create_task(run_central(Config(), postgres_url, listen="127.0.0.1:0", poll_interval=0.2,
                                           stop=stop, started=ports.append))
    await wait_until(lambda: ports or task.done(), what="the central console listens")
    if task.done():
        task.result()
    yield Central(f"http://127.0.0.1:{ports[0]}")
    stop.set()
    await asyncio.wait_for(task, 20)


@pytest.mark.asyncio
async def test_central_console_shows_every_agents_hangups_live_with_their_instance(
        central: Central, agents: list[Agent], resolver: Resolver) -> None:
    kyiv, lviv = agents
    async with aiohttp.ClientSession() as session:
        every, only_lviv = [], []
        connected = [asyncio.Event(), asyncio.Event()]
        readers = [asyncio.create_task(_collect(session, central.url + "/events", every, connected[0])),
                   asyncio.create_task(_collect(session, central.url + "/events?instance=pbx-lviv", only_lviv,
                                                connected[1]))]
        try:
            await asyncio.wait_for(asyncio.gather(*(c.wait() for c in connected)), 20)
            await kyiv.publish(hangup(resolver, call_id="k1", leg_id="k1-leg"))
            await lviv.publish(hangup(resolver, sip="486", phrase="Busy Here", call_id="l1", leg_id="l1-leg"))
            await kyiv.publish(hangup(resolver, call_id="k2", leg_id="k2-leg"))
            await wait_until(lambda: len(every) >= 3 and len(only_lviv) >= 1, what="three live events")
            assert sorted((e["instance"], e["uniqueid"]) for e in every) == [
                ("pbx-kyiv", "k1-leg"), ("pbx-kyiv", "k2-leg"), ("pbx-lviv", "l1-leg")]
            assert [(e["instance"], e["uniqueid"]) for e in only_lviv] == [("pbx-lviv", "l1-leg")]
            kyiv_event = next(e for e in every if e["uniqueid"] == "k1-leg")
            assert kyiv_event["category"] == "capacity" and kyiv_event["texts"]["en"]  # texts from reason_texts

            async with session.get(central.url + "/api/recent") as response:
                items = (await response.json())["items"]
            assert sorted((i["instance"], i["uniqueid"]) for i in items) == sorted(
                (e["instance"], e["uniqueid"]) for e in every)
            async with session.get(central.url + "/api/recent?instance=pbx-kyiv") as response:
                assert {i["instance"] for i in (await response.json())["items"]} == {"pbx-kyiv"}
            async with session.get(central.url + "/api/stats") as response:
                fleet = await response.json()
            async with session.get(central.url + "/api/stats?instance=pbx-lviv") as response:
                lviv_only = await response.json()
            assert fleet["total"][0] == 3 and lviv_only["total"][0] == 1
            assert lviv_only["by_category"] == {"busy": [1, 1, 1]}
            async with session.get(central.url + "/metrics") as response:
                metrics = await response.text()
            assert 'pbx_instance="pbx-kyiv"' in metrics and 'pbx_instance="pbx-lviv"' in metrics
            assert len(every) == 3  # each row once: notification and poll never both publish it
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)


@pytest.mark.asyncio
async def test_a_row_whose_notification_is_lost_reaches_the_feed_by_the_poll_once(
        postgres_url: str, agents: list[Agent], resolver: Resolver) -> None:
    kyiv, _ = agents
    reader = await open_store(postgres_url, {"retention_days": None})
    bus = AnnotationBus()
    sub = bus.subscribe("test")
    # No listening, no timer: only the polls this test makes. The read gap is an hour: a first announcement is
    # read at once all the same.
    feed = StoreFeed(reader, bus, poll_interval=3600, read_gap=3600)
    try:
        await feed.start_point()
        for n in range(5):  # committed and announced, but nobody listens: the announcements are lost
            await kyiv.publish(hangup(resolver, call_id=f"lost{n}", leg_id=f"lost{n}-leg"))
        assert await feed.poll() == 5
        assert await feed.poll() == 0  # already shown
        legs = [sub.queue.get_nowait().observation for _ in range(sub.queue.qsize())]
        assert [(o.instance, o.leg_id) for o in legs] == [("pbx-kyiv", f"lost{n}-leg") for n in range(5)]
        # A late announcement of rows the poll already brought publishes nothing again.
        records = await reader.backend.fetch("SELECT MIN(id), MAX(id), MIN(day) FROM hangups")
        feed.on_payload(" ".join(str(v) for v in records[0]))
        before = bus.published
        task = asyncio.create_task(feed._read_loop())
        await wait_until(lambda: feed.stats.reads == 1, what="the announcement read")
        task.cancel()
        assert bus.published == before
    finally:
        await reader.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("burned", [0, 600], ids=["few gaps", "more gaps than the poll names"])
async def test_a_row_committed_after_a_later_one_was_shown_reaches_the_feed_by_the_poll_once(
        postgres_url: str, agents: list[Agent], resolver: Resolver, burned: int) -> None:
    import psycopg

    kyiv, _ = agents
    await kyiv.publish(hangup(resolver, call_id="first", leg_id="first-leg"))  # today's partition exists
    reader = await open_store(postgres_url, {"retention_days": None})
    bus = AnnotationBus()
    sub = bus.subscribe("test")
    feed = StoreFeed(reader, bus, poll_interval=3600)  # only the polls this test makes
    try:
        await feed.start_point()
        async with await psycopg.AsyncConnection.connect(postgres_url) as slow:
            # A transaction takes its id, then stays open while a later one commits and is shown.
            await slow.execute("INSERT INTO hangups (rid, ts, stored_at, uniqueid, day) "
                               "VALUES ('late', %s, %s, 'late-leg', %s)", (time.time(), time.time(),
                                                                            int(time.time() // 86400)))
            if burned:  # ids taken and never used (a batch's duplicates, a rollback): gaps that stay gaps
                async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as other:
                    await other.execute("SELECT nextval('hangups_id_seq') FROM generate_series(1, %s)", (burned,))
            await kyiv.publish(hangup(resolver, call_id="later", leg_id="later-leg"))
            assert await feed.poll() == 1
            await slow.commit()
        assert await feed.poll() == 1
        assert await feed.poll() == 0
        legs = [sub.queue.get_nowait().observation.leg_id for _ in range(sub.queue.qsize())]
        assert legs == ["later-leg", "late-leg"]
    finally:
        await reader.close()


@pytest.mark.asyncio
async def test_rows_keep_texts_by_reference_and_the_console_gets_them_back(
        postgres_url: str, agents: list[Agent], resolver: Resolver) -> None:
    kyiv, _ = agents
    for n in range(20):
        await kyiv.publish(hangup(resolver, call_id=f"t{n}", leg_id=f"t{n}-leg"))
    rows = await kyiv.store.backend.fetch("SELECT COUNT(*), COUNT(text_uk), COUNT(text_en), COUNT(DISTINCT texts_id) "
                                          "FROM hangups")
    assert rows[0] == (20, 0, 0, 1)
    assert (await kyiv.store.backend.fetch("SELECT COUNT(*) FROM reason_texts"))[0][0] == 1
    recent = await kyiv.store.recent(limit=5)
    assert {r["texts"]["uk"] for r in recent} == {hangup(resolver).texts["uk"]}


@pytest.mark.asyncio
async def test_over_sqlite_the_poll_alone_carries_the_feed(tmp_path: Any, resolver: Resolver) -> None:
    url = f"sqlite://{tmp_path / 'one.db'}"
    bus = AnnotationBus(instance="pbx-solo")
    agent = await open_store(url, {"flush_ms": 10, "retention_days": None, "journal": ""})
    agent.start(bus)
    reader = await open_store(url, {"retention_days": None, "journal": ""})
    feed_bus = AnnotationBus()
    sub = feed_bus.subscribe("test")
    feed = StoreFeed(reader, feed_bus, poll_interval=0.05)
    task = asyncio.create_task(feed.run())
    try:
        await wait_until(lambda: feed._marks, what="the feed's starting point")
        for n in range(3):
            bus.publish(hangup(resolver, call_id=f"s{n}", leg_id=f"s{n}-leg"))
        await agent.flush(timeout=20)
        await wait_until(lambda: sub.queue.qsize() == 3, what="three rows polled")
        legs = [sub.queue.get_nowait().observation for _ in range(3)]
        assert [(o.instance, o.leg_id) for o in legs] == [("pbx-solo", f"s{n}-leg") for n in range(3)]
        assert not feed.stats.listening and feed.stats.recovered == 3
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await agent.close()
        await reader.close()
