"""The trunk quality view in a real headless Chromium over a real SQLite store: the table over a chosen range, the
per-trunk chart, and the drill-down from a trunk to its failure causes to the calls. Screenshot in
artifacts/console/trunk-quality.png."""
from __future__ import annotations

import asyncio
import json
import shutil
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from console.support import HOSTILE
from pbx_codes.console import ConsoleSettings, start_console
from pbx_codes.sinks.bus import AnnotationBus
from pbx_codes.store import open_store
from support.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from support.seizures import mix, seizure

playwright_api = pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")
pytestmark = [pytest.mark.asyncio,
              pytest.mark.skipif(shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists(),
                                 reason=f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")]
expect = playwright_api.expect


@pytest_asyncio.fixture
async def console_url(tmp_path: Path) -> AsyncIterator[str]:
    """A console over a SQLite store holding: lifecell's mix an hour ago (plus one hostile carrier phrase), and
    kyivstar's mix three days ago (inside the week, outside the day)."""
    store = await open_store(f"sqlite://{tmp_path}/a.db", {"journal": str(tmp_path / "j"), "retention_days": None})
    store.start()
    now = time.time()
    for ann in mix("lifecell", start=now - 3000):
        store.add(ann)
    store.add(seizure("lifecell", "capacity", "503", start=now - 2900, phrase=HOSTILE, leg="hostile"))
    for ann in mix("kyivstar", start=now - 3 * 86400, pbx="freeswitch"):
        store.add(ann)
    await store.flush(10)
    runner, port = await start_console(ConsoleSettings(port=0), AnnotationBus(), store)
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()
    await store.close()


@pytest_asyncio.fixture
async def page() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await chromium.new_context(viewport={"width": 1400, "height": 1100})
        page = await context.new_page()
        page.errors, page.dialogs = [], []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        yield page
        await chromium.close()


def cells(row_text: str) -> list[str]:
    return [c.strip() for c in row_text.split("\t")]


async def test_quality_table_chart_and_drill_down_to_the_calls(console_url, page):
    await page.goto(console_url + "/")
    await page.click("#quality-link")
    rows = page.locator("#quality tbody tr")
    await expect(rows).to_have_count(1)  # kyivstar's calls are three days old: not in the last day
    # lifecell: the mix's 10 seizures plus one more 503: 11 seizures, 4 answered, NER 7/11, SEER 5/11, ISA 3/11
    await expect(rows.first).to_contain_text("lifecell")
    texts = [await c.inner_text() for c in await rows.first.locator("td").all()]
    # PDD p50/p95 from the hourly rollup's buckets read at their middles: 3500/5750 ms over the legs themselves
    assert texts[:10] == ["asterisk", "lifecell", "11", "36.4%", "63.6%", "45.5%", "27.3%", "3488", "5728", "25.0"]
    assert texts[10].startswith("capacity 3")

    await page.check("#range input[value='1w']")
    await expect(rows).to_have_count(2)
    await expect(page.locator("#quality tbody tr[data-trunk='kyivstar']")).to_contain_text("freeswitch")

    await page.locator("#quality tbody tr[data-trunk='lifecell']").click()
    await expect(page.locator("#trunk-name")).to_have_text("lifecell (asterisk)")
    for measure in ("asr", "ner", "seer", "isa"):
        await expect(page.locator(f"#trunk-chart polyline[data-measure='{measure}']")).to_have_count(1)
    causes = page.locator("#causes tbody tr")
    await expect(causes).to_have_count(6)  # capacity 503 x2, hostile 503, billing 409, busy, invalid, no answer
    await expect(causes.first).to_contain_text("capacity")
    await expect(page.locator("#causes")).to_contain_text("billing (network)")
    await expect(page.locator("#causes")).to_contain_text(HOSTILE)  # shown as text, never run

    await causes.filter(has_text="billing").click()
    calls = page.locator("#calls tbody tr")
    await expect(calls).to_have_count(1)
    await expect(calls.first).to_contain_text("Not enough money")
    await calls.first.click()
    await expect(page.locator("#call-legs")).to_contain_text("409")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "trunk-quality.png"), full_page=True)
    assert page.errors == [] and page.dialogs == []


async def test_quality_api_answers_the_same_measures_and_refuses_a_bad_range(console_url):
    def get(path: str) -> Any:
        with urllib.request.urlopen(console_url + path, timeout=10) as response:
            return json.loads(response.read())

    (item,) = (await asyncio.to_thread(get, "/api/quality?range=1d"))["items"]
    assert (item["trunk"], item["seizures"], item["answered"]) == ("lifecell", 11, 4)
    series = await asyncio.to_thread(get, "/api/quality/series?trunk=lifecell&range=1d")
    assert series["bucket"] == 3600 and sum(p["seizures"] for p in series["points"]) == 11
    with pytest.raises(urllib.error.HTTPError) as err:
        await asyncio.to_thread(get, "/api/quality?range=1y")
    assert err.value.code == 400
