"""The quality view's ranges: a preset one ends now and starts on the hour its length before (so the trunk quality
table reads whole hours of the rollup and no rows); one given by from/to is taken as given."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from pbx_codes.console import ConsoleSettings, create_app
from pbx_codes.console.quality import WARMER, Warmer, chosen_range, preset_range
from pbx_codes.sinks.bus import AnnotationBus
from pbx_codes.store import open_store
from support.seizures import mix
from support.waiting import wait_until

NOW = 1_796_150_614.79  # 18:43:34 UTC


def test_a_preset_range_starts_on_the_hour_its_length_before_now() -> None:
    since, until = preset_range(86400, NOW)
    assert since == 1_796_061_600.0 and until == pytest.approx(NOW)  # 18:00 the day before, until now
    for name, span in (("1h", 3600), ("1d", 86400), ("1w", 604800)):
        since, until = chosen_range(make_mocked_request("GET", f"/api/quality?range={name}"), NOW)
        assert (since, until) == preset_range(span, NOW)
        assert since % 3600 == 0 and NOW - span - 3600 < since <= NOW - span
    given = chosen_range(make_mocked_request("GET", f"/api/quality?from={NOW - 5000}&to={NOW - 100}"), NOW)
    assert given == (NOW - 5000, NOW - 100)


@pytest.mark.asyncio
async def test_the_api_says_whether_its_range_starts_on_the_hour(tmp_path: Path) -> None:
    store = await open_store(f"sqlite://{tmp_path}/a.db", {"journal": str(tmp_path / "j"), "retention_days": None})
    store.start()
    for ann in mix("lifecell", start=time.time() - 600):
        store.add(ann)
    await store.flush(10)
    client = TestClient(TestServer(create_app(AnnotationBus(), store, None, None, ConsoleSettings())))
    await client.start_server()
    try:
        preset = await (await client.get("/api/quality?range=1h")).json()
        assert preset["since_hour"] is True and preset["from"] % 3600 == 0
        assert preset["to"] - 7200 <= preset["from"] <= preset["to"] - 3600
        assert [i["seizures"] for i in preset["items"]] == [10]
        now = time.time()
        given = await (await client.get(f"/api/quality?from={now - 900}&to={now}")).json()
        assert given["since_hour"] is False and given["from"] == pytest.approx(now - 900)
        assert [i["seizures"] for i in given["items"]] == [10]
    finally:
        await client.close()
        await store.close()


@pytest.mark.asyncio
async def test_the_page_s_preset_tables_are_warmed_at_start_and_kept_warm_while_it_is_used(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The console reads the three preset tables in the background when it starts and, after an /api/quality, once a
    minute, so the merge of their settled hours is in the cache before the page asks."""
    monkeypatch.setattr(Warmer, "EVERY", 0.01)
    store = await open_store(f"sqlite://{tmp_path}/a.db", {"journal": str(tmp_path / "j"), "retention_days": None})
    store.start()
    for ann in mix("lifecell", start=time.time() - 3 * 3600):
        store.add(ann)
    await store.flush(10)
    client = TestClient(TestServer(create_app(AnnotationBus(), store, None, None, ConsoleSettings())))
    await client.start_server()
    try:
        cache = client.server.app[WARMER].cache
        # Warmed once as the console starts, before any page asks: the first answer is not a cold one.
        await wait_until(lambda: len(cache.ranges) >= 2, what="the day's and week's tables warmed at start")
        await (await client.get("/api/quality?range=1h")).json()
        cache.clear()
        await wait_until(lambda: len(cache.ranges) >= 2, what="the day's and week's tables warmed while used")
    finally:
        await client.close()
        await store.close()
