"""A database that goes away loses nothing: rows wait in memory, then in the journal, and are written when it is
back, including after a crash; a PostgreSQL server stopped mid-burst and restarted ends with every row stored."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from pbx_codes.resolve import Resolver
from pbx_codes.sinks.bus import AnnotationBus
from pbx_codes.store import Store, open_store, parse_store_settings
from pbx_codes.store.journal import Journal
from pbx_codes.store.store import make_backend
from store.store_support import FlakyBackend, hangup
from support.waiting import wait_until


async def flaky_store(url: str, journal: str, **settings: object) -> tuple[Store, FlakyBackend]:
    options = {"batch_size": 20, "flush_ms": 10, "max_pending": 100, "retry_max": 0.05, "retention_days": None,
               "journal": journal, **settings}
    backend = FlakyBackend(make_backend(url))
    await backend.ensure()
    return Store(backend, parse_store_settings(options, url), Journal(Path(journal))), backend


def journal_rids(path: str) -> list[str]:
    """Rows in the journal, including a file renamed aside by a replay the outage interrupted."""
    rids = []
    for p in (Journal(Path(path)).replay_path, Path(path)):
        if p.exists():
            rids += [json.loads(line)["rid"] for line in p.read_text(encoding="utf-8").splitlines()]
    return rids


@pytest.mark.asyncio
async def test_rows_spilled_to_the_journal_are_written_after_a_crash(store_url: str, journal_path: str,
                                                                     resolver: Resolver) -> None:
    store, backend = await flaky_store(store_url, journal_path)
    store.start()
    backend.down = True
    for i in range(500):
        store.add(hangup(resolver, leg_id=f"leg-{i}"))
    await wait_until(lambda: backend.failed_calls > 0, limit=100, what="the writer tried the switched-off database")
    assert store.writer.pending <= 100  # the memory bound held
    spilled = journal_rids(journal_path)
    assert len(spilled) >= 400 and len(set(spilled)) == len(spilled)
    store.abandon()  # a crash: nothing more is written or journaled
    await backend.close()

    again = await open_store(store_url, {"journal": journal_path, "flush_ms": 10, "retention_days": None})
    again.start()
    try:
        await again.flush(timeout=60)
        stored = {r["rid"] for r in await again.recent(limit=1000)}
        assert stored == set(spilled)
        assert again.stats.replayed == len(spilled)
        assert not Path(journal_path).exists() and not Journal(Path(journal_path)).has_rows()
    finally:
        await again.close()


@pytest.mark.asyncio
async def test_close_during_an_outage_journals_every_row_for_the_next_start(store_url: str, journal_path: str,
                                                                            resolver: Resolver) -> None:
    store, backend = await flaky_store(store_url, journal_path, max_pending=10_000)
    store.start()
    store.add(hangup(resolver, leg_id="before"))
    await store.flush(timeout=30)
    backend.down = True
    for i in range(120):
        store.add(hangup(resolver, leg_id=f"during-{i}"))
    await store.close(timeout=0.2)
    assert len(journal_rids(journal_path)) == 120

    again = await open_store(store_url, {"journal": journal_path, "flush_ms": 10, "retention_days": None})
    again.start()
    try:
        await again.flush(timeout=60)
        legs = {r["uniqueid"] for r in await again.recent(limit=1000)}
        assert legs == {"before", *(f"during-{i}" for i in range(120))}
    finally:
        await again.close()


@pytest.mark.asyncio
async def test_replay_skips_rows_already_stored_and_a_torn_last_line(store_url: str, journal_path: str,
                                                                     resolver: Resolver) -> None:
    store = await open_store(store_url, {"journal": journal_path, "flush_ms": 10, "retention_days": None})
    store.start()
    store.add(hangup(resolver, leg_id="stored"))
    await store.flush(timeout=30)
    (row,) = await store.recent()
    await store.close()
    journal = Journal(Path(journal_path))
    journal.append([{**row, "timestamp": row["timestamp"]}, {**row, "rid": "new-rid", "uniqueid": "journaled"}])
    with open(journal_path, "a", encoding="utf-8") as handle:
        handle.write('{"rid": "torn", "uniqueid": "half-writ')  # the crash hit mid-line

    again = await open_store(store_url, {"journal": journal_path, "flush_ms": 10, "retention_days": None})
    again.start()
    try:
        await again.flush(timeout=30)
        assert sorted(r["uniqueid"] for r in await again.recent()) == ["journaled", "stored"]
        assert again.writer.journal is not None and again.writer.journal.corrupt_lines == 1
    finally:
        await again.close()


@pytest.mark.asyncio
async def test_postgresql_stopped_mid_burst_and_restarted_loses_no_annotation(postgres_server, postgres_url: str,
                                                                              tmp_path: Path,
                                                                              resolver: Resolver) -> None:
    bus = AnnotationBus()
    store = await open_store(postgres_url, {"batch_size": 50, "flush_ms": 20, "max_pending": 300, "retry_max": 0.2,
                                            "retention_days": None, "journal": str(tmp_path / "j.jsonl"),
                                            "connect_timeout": 2})
    store.start(bus)
    sent = 0

    def burst(n: int) -> None:
        nonlocal sent
        for _ in range(n):
            bus.publish(hangup(resolver, leg_id=f"leg-{sent}", call_id=f"call-{sent // 3}"))
            sent += 1

    try:
        burst(400)
        await asyncio.sleep(0)
        await asyncio.to_thread(postgres_server.stop, "immediate")  # the server process goes away mid-burst
        burst(400)
        await wait_until(lambda: not store.stats.available, limit=100, what="the writer noticed the database is gone")
        burst(400)  # more than max_pending while it is away: some of these go to the journal
        await asyncio.sleep(0.5)
        await asyncio.to_thread(postgres_server.start)
        burst(300)
        await store.flush(timeout=120)
        assert store.stats.failures > 0 and store.stats.spilled > 0
        legs = {r["uniqueid"] for r in await store.recent(limit=5000)}
        assert len(legs) == sent == 1500
        assert await store.count() == 1500  # and nothing twice
    finally:
        await store.close()


class _RefusesOneRow(FlakyBackend):
    """Refuses one row as data (not as an outage), as a database does with a value it cannot take."""

    def __init__(self, inner, bad_leg: str) -> None:
        super().__init__(inner)
        self.bad_leg = bad_leg

    async def insert(self, rows):
        if any(r["uniqueid"] == self.bad_leg for r in rows):
            raise ValueError("value the database cannot take")
        return await self.inner.insert(rows)

    def is_transient(self, exc: BaseException) -> bool:
        return not isinstance(exc, ValueError) and self.inner.is_transient(exc)


@pytest.mark.asyncio
async def test_a_row_the_database_refuses_is_set_aside_and_the_batch_still_written(
        store_url: str, journal_path: str, resolver: Resolver) -> None:
    backend = _RefusesOneRow(make_backend(store_url), "bad")
    await backend.ensure()
    store = Store(backend, parse_store_settings({"batch_size": 50, "flush_ms": 10, "retention_days": None},
                                                store_url), Journal(Path(journal_path)))
    store.start()
    try:
        for i in range(40):
            store.add(hangup(resolver, leg_id="bad" if i == 17 else f"ok-{i}"))
        await store.flush(timeout=30)
        assert await store.count() == 39 and store.stats.rejected == 1
        rejected = Path(journal_path + ".rejected").read_text(encoding="utf-8").splitlines()
        assert [json.loads(line)["uniqueid"] for line in rejected] == ["bad"]
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_postgresql_that_comes_back_without_the_table_is_migrated_again(postgres_url: str, tmp_path: Path,
                                                                              resolver: Resolver) -> None:
    import psycopg

    store = await open_store(postgres_url, {"flush_ms": 10, "retention_days": None,
                                            "journal": str(tmp_path / "j.jsonl")})
    store.start()
    try:
        store.add(hangup(resolver, leg_id="first"))
        await store.flush(timeout=30)
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("DROP TABLE hangups")
            conn.execute("DELETE FROM schema_version")
        store.add(hangup(resolver, leg_id="second"))
        await store.flush(timeout=30)
        assert [r["uniqueid"] for r in await store.recent()] == ["second"] and store.stats.rejected == 0
    finally:
        await store.close()
