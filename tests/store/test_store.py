"""The store on SQLite and on PostgreSQL: what goes in comes out, the console's queries agree with the in-memory view,
retention removes only old rows, and a burst is written in batches."""
from __future__ import annotations

import time

import pytest

from pbx_codes.console.memory_store import MemoryStore
from pbx_codes.model import Annotation
from pbx_codes.resolve import Resolver
from pbx_codes.sinks.bus import AnnotationBus
from pbx_codes.store import Store, open_store
from pbx_codes.store.schema import LATEST_VERSION, clean_text
from pbx_codes.store.store import StoreConfigError, make_backend, sqlite_path
from store.store_support import HOSTILE_PHRASES, hangup

COMPARED = ("pbx", "uniqueid", "linkedid", "channel", "trunk", "number", "catalog", "code", "phrase", "matched",
            "exact", "match_kind", "category", "retry", "fault", "hangup_by", "sip", "q850", "observed_q850",
            "texts", "original_lang", "timestamp")


def expected(annotation: Annotation) -> dict:
    data = annotation.to_dict()
    data["phrase"] = clean_text(data["phrase"])
    return {k: data[k] for k in COMPARED}


@pytest.mark.asyncio
async def test_round_trip_keeps_every_field_of_non_ascii_and_hostile_phrases(store: Store, resolver: Resolver) -> None:
    now = time.time()
    anns = [hangup(resolver, sip=code, phrase=phrase, call_id="call-1", leg_id=f"leg-{i}", timestamp=now + i,
                   pbx=("asterisk", "freeswitch")[i % 2], q850=34 if i % 3 == 0 else None)
            for i, (code, phrase) in enumerate(zip(["503", "486", "409", "499", "799", "404", "480", "603"],
                                                   HOSTILE_PHRASES))]
    for ann in anns:
        store.add(ann)
    await store.flush(timeout=30)

    legs = await store.call("call-1")
    assert [{k: leg[k] for k in COMPARED} for leg in legs] == [expected(a) for a in anns]
    assert legs[0]["texts"]["uk"] and legs[0]["rid"]
    assert "nul\ufffdbyte" in [leg["phrase"] for leg in legs]
    assert await store.count() == len(anns)


@pytest.mark.asyncio
async def test_recent_filters_and_searches_by_call_id_and_number(store: Store, resolver: Resolver) -> None:
    now = time.time()
    store.add(hangup(resolver, sip="503", call_id="1700.1", leg_id="1700.2", number="+380501112233", timestamp=now))
    store.add(hangup(resolver, sip="486", call_id="1800.1", leg_id="1800.2", number="+380671234567", timestamp=now + 1,
                     pbx="freeswitch", trunk="gw-mango"))
    store.add(hangup(resolver, sip="402", call_id="1900.1", leg_id="1900.2", number="100%_x", timestamp=now + 2))
    await store.flush(timeout=30)

    assert [r["linkedid"] for r in await store.recent()] == ["1900.1", "1800.1", "1700.1"]
    assert [r["linkedid"] for r in await store.recent(limit=1)] == ["1900.1"]
    assert [r["linkedid"] for r in await store.recent(pbx="freeswitch")] == ["1800.1"]
    assert [r["linkedid"] for r in await store.recent(trunk="gw-mango")] == ["1800.1"]
    assert [r["linkedid"] for r in await store.recent(category="billing")] == ["1900.1"]
    assert [r["linkedid"] for r in await store.recent(code="503")] == ["1700.1"]
    assert [r["linkedid"] for r in await store.recent(search="1112")] == ["1700.1"]
    assert [r["linkedid"] for r in await store.recent(search="1800.2")] == ["1800.1"]
    assert [r["linkedid"] for r in await store.recent(search="%")] == ["1900.1"]  # a character, not a wildcard
    assert [r["linkedid"] for r in await store.recent(search="0_")] == []


@pytest.mark.asyncio
async def test_a_burst_from_the_bus_is_written_in_batches(store_url: str, journal_path: str,
                                                          resolver: Resolver) -> None:
    bus = AnnotationBus()
    store = await open_store(store_url, {"batch_size": 100, "flush_ms": 50, "journal": journal_path,
                                         "retention_days": None})
    store.start(bus)
    try:
        for i in range(1000):
            bus.publish(hangup(resolver, leg_id=f"leg-{i}", call_id=f"call-{i // 2}"))
        await store.flush(timeout=60)
        assert await store.count() == 1000
        assert store.stats.written == 1000
        assert store.stats.batches == 10  # the whole burst was drained before the writer ran: 10 full batches
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_retention_removes_only_rows_older_than_the_setting(store_url: str, journal_path: str,
                                                                  resolver: Resolver) -> None:
    store = await open_store(store_url, {"retention_days": 7, "journal": journal_path, "flush_ms": 10})
    now = 1_800_000_000.0
    store.start()
    try:
        for _i, age_days in enumerate((30, 8, 6.9, 1, 0)):
            store.add(hangup(resolver, leg_id=f"age-{age_days}", timestamp=now - age_days * 86400))
        await store.flush(timeout=30)
        assert await store.purge(now=now) == 2
        assert sorted(r["uniqueid"] for r in await store.recent()) == ["age-0", "age-1", "age-6.9"]
        assert await store.purge(now=now) == 0
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_window_counts_and_failure_series_agree_with_the_in_memory_view(store: Store,
                                                                             resolver: Resolver) -> None:
    now = 1_800_000_100.0
    memory = MemoryStore(1000)
    cases = [("503", "lifecell-trunk", 10), ("503", "lifecell-trunk", 59), ("486", "gw-mango", 100),
             ("200", "other", 250), ("402", "lifecell-trunk", 299), ("402", "lifecell-trunk", 300),
             ("404", "other", 600), ("200", "other", 899), ("503", "other", 901), ("503", "other", -5)]
    for i, (code, trunk, age) in enumerate(cases):
        ann = hangup(resolver, sip=code, phrase=None, trunk=trunk, leg_id=f"l{i}", timestamp=now - age)
        store.add(ann)
        memory.add(ann)
    await store.flush(timeout=30)

    counts = await store.window_counts((60, 300, 900), now=now)
    assert counts == await memory.window_counts((60, 300, 900), now=now)
    assert counts["by_trunk"]["lifecell-trunk"] == [2, 3, 4]
    assert counts["by_category"]["capacity"] == [2, 2, 2]
    assert counts["total"] == [2, 5, 8]
    series = await store.failure_rate_series(60, 15, now=now)
    assert series == await memory.failure_rate_series(60, 15, now=now)
    assert sum(p["total"] for p in series) == 8 and sum(p["failed"] for p in series) == 7


@pytest.mark.asyncio
async def test_migrations_are_numbered_recorded_once_and_rerun_safely(store_url: str, journal_path: str) -> None:
    for _ in range(2):
        store = await open_store(store_url, {"journal": journal_path})
        versions = await store.backend.fetch("SELECT version FROM schema_version ORDER BY version")
        await store.close()
    assert [v for (v,) in versions] == list(range(1, LATEST_VERSION + 1))


def test_store_urls_name_the_database_and_refuse_others() -> None:
    assert sqlite_path("sqlite:///var/lib/x.db") == "/var/lib/x.db"
    assert sqlite_path("sqlite:////var/lib/x.db") == "/var/lib/x.db"
    assert sqlite_path("sqlite://x.db") == "x.db"
    assert sqlite_path("sqlite:///:memory:") == ":memory:"
    with pytest.raises(StoreConfigError):
        make_backend("mysql://host/db")


@pytest.mark.asyncio
async def test_the_console_reads_the_store_through_its_port(store: Store, resolver: Resolver) -> None:
    from pbx_codes.console.app import stats_payload
    from pbx_codes.console.ports import ConsoleStore

    assert isinstance(store, ConsoleStore)
    store.add(hangup(resolver, timestamp=time.time()))
    await store.flush(timeout=30)
    payload = stats_payload(await store.window_counts(), await store.failure_rate_series())
    assert payload["total"] == [1, 1, 1] and payload["by_category"] == {"capacity": [1, 1, 1]}


@pytest.mark.parametrize("url", ["postgresql://u:s3cret@[::1:1/db", "postgresql://u:s3%zzcret@h/db"])
def test_an_unreadable_postgresql_url_is_a_config_error_without_the_password(url: str) -> None:
    pytest.importorskip("psycopg", reason="psycopg 3 is not installed")
    with pytest.raises(StoreConfigError) as caught:
        make_backend(url)
    assert "s3" not in str(caught.value)


def test_the_store_description_in_logs_has_no_password_even_in_the_query() -> None:
    pytest.importorskip("psycopg", reason="psycopg 3 is not installed")
    backend = make_backend("postgresql://u@127.0.0.1:1/db?password=s3cret&connect_timeout=1")
    assert "s3cret" not in backend.describe() and "127.0.0.1:1/db" in backend.describe()


@pytest.mark.asyncio
async def test_a_file_that_is_not_a_database_is_a_config_error_not_a_crash(tmp_path) -> None:
    path = tmp_path / "not-a.db"
    path.write_bytes(b"this is not an SQLite database, only text that is long enough to have a header" * 4)
    with pytest.raises(StoreConfigError, match="not a database"):
        await open_store(f"sqlite:///{path}", {"journal": str(tmp_path / "j.jsonl")})
