"""The console page in a real headless Chromium: live feed, language switch, filters, alerts, call detail, and a
hostile carrier phrase shown as text. Screenshots go to artifacts/console/ for a person to look at."""
from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from console.support import HOSTILE, FakeAlerts, hangup
from pbx_codes.console import ConsoleSettings, start_console
from pbx_codes.resolve import Resolver
from pbx_codes.sinks.bus import AnnotationBus
from support.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

playwright_api = pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")
pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists(),
                                reason=f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
expect = playwright_api.expect

UK_CAPACITY = "перевищено ліміт одночасних викликів."


class Console:
    """A running console on a free loopback port, with its bus and alert source."""

    def __init__(self, bus: AnnotationBus, alerts: FakeAlerts, url: str) -> None:
        self.bus, self.alerts, self.url = bus, alerts, url


async def _serve(settings: ConsoleSettings) -> tuple[Console, Any]:
    bus, alerts = AnnotationBus(), FakeAlerts()
    runner, port = await start_console(settings, bus, None, None, alerts)
    return Console(bus, alerts, f"http://127.0.0.1:{port}"), runner


@pytest_asyncio.fixture
async def console() -> AsyncIterator[Console]:
    served, runner = await _serve(ConsoleSettings(port=0, language="uk"))
    yield served
    await runner.cleanup()


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest_asyncio.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.errors, page.dialogs = [], []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    yield page
    await context.close()


async def _open(page: Any, url: str) -> None:
    """Open the page and wait until its event stream is connected, so a publish now reaches it."""
    await page.goto(url)
    await expect(page.locator("#conn")).to_have_text("live")


async def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _rows(page: Any) -> Any:
    return page.locator("#feed tbody tr")


@pytest.mark.asyncio
async def test_published_hangup_appears_live_in_the_feed(console: Console, page: Any,
                                                                    resolver: Resolver) -> None:
    await _open(page, console.url)
    console.bus.publish(hangup(resolver))
    row = _rows(page).first
    await expect(_rows(page)).to_have_count(1, timeout=5000)
    await expect(row.locator(".trunk")).to_have_text("lifecell-trunk")
    await expect(row.locator(".code")).to_have_text("503")
    await expect(row.locator(".phrase")).to_have_text("Simultaneous calls limit reached")
    await expect(row.locator(".badge")).to_have_text("capacity")
    await expect(row.locator(".badge")).to_have_class("badge cat-capacity")
    await expect(row.locator(".reason")).to_have_text(UK_CAPACITY)
    await expect(row.locator(".number")).to_have_text("+********4567")
    await _shot(page, "feed")
    assert page.errors == []


@pytest.mark.asyncio
async def test_language_switch_rerenders_the_reason_texts(console: Console, page: Any,
                                                          resolver: Resolver) -> None:
    await _open(page, console.url)
    ann = hangup(resolver)
    console.bus.publish(ann)
    reason = _rows(page).first.locator(".reason")
    await expect(reason).to_have_text(UK_CAPACITY)
    await page.select_option("#lang", "en")
    await expect(reason).to_have_text(ann.texts["en"])
    assert ann.texts["en"] != UK_CAPACITY
    await _shot(page, "language-en")
    await page.select_option("#lang", "uk")
    await expect(reason).to_have_text(UK_CAPACITY)


@pytest.mark.asyncio
async def test_filters_narrow_the_feed(console: Console, page: Any, resolver: Resolver) -> None:
    await _open(page, console.url)
    console.bus.publish(hangup(resolver, call_id="c1", leg_id="l1"))
    console.bus.publish(hangup(resolver, sip="486", phrase="Busy Here", trunk="gw-b", call_id="c2", leg_id="l2",
                               number="+380509998877", pbx="freeswitch"))
    await expect(_rows(page)).to_have_count(2)
    await page.select_option("select[name=trunk]", "gw-b")
    await expect(_rows(page)).to_have_count(1)
    await expect(_rows(page).first.locator(".trunk")).to_have_text("gw-b")
    await _shot(page, "filtered")
    await page.click("button[type=reset]")
    await expect(_rows(page)).to_have_count(2)
    await page.select_option("select[name=category]", "capacity")
    await expect(_rows(page)).to_have_count(1)
    await page.click("button[type=reset]")
    await page.fill("input[name=search]", "8877")
    await expect(_rows(page)).to_have_count(1)
    await expect(_rows(page).first.locator(".number")).to_have_text("+********8877")
    await page.fill("input[name=search]", "")
    await page.fill("input[name=code]", "486")
    await expect(_rows(page)).to_have_count(1)
    await page.fill("input[name=code]", "")
    await page.select_option("select[name=pbx]", "asterisk")
    await expect(_rows(page)).to_have_count(1)
    await expect(_rows(page).first.locator(".pbx")).to_have_text("asterisk")


@pytest.mark.asyncio
async def test_fired_and_cleared_alerts_appear(console: Console, page: Any) -> None:
    await _open(page, console.url)
    console.alerts.emit(state="fired", name="lifecell-trunk capacity", message="503 on 40% of calls in 5 min")
    alert = page.locator("#alerts li").first
    await expect(alert).to_have_class("alert alert-fired")
    await expect(alert.locator(".name")).to_have_text("lifecell-trunk capacity")
    await expect(alert.locator(".message")).to_have_text("503 on 40% of calls in 5 min")
    await expect(page.locator("#alerts-empty")).to_be_hidden()
    await _shot(page, "alert-fired")
    console.alerts.emit(state="cleared", name="lifecell-trunk capacity", message="back under 10%")
    await expect(page.locator("#alerts li")).to_have_count(2)
    await expect(page.locator("#alerts li").first).to_have_class("alert alert-cleared")


@pytest.mark.asyncio
async def test_hostile_phrase_shows_as_text(console: Console, page: Any, resolver: Resolver) -> None:
    await _open(page, console.url)
    console.bus.publish(hangup(resolver, sip="599", phrase=HOSTILE, trunk=HOSTILE, number="<b>1234</b>"))
    row = _rows(page).first
    await expect(row.locator(".phrase")).to_have_text(HOSTILE)
    await expect(row.locator(".trunk")).to_have_text(HOSTILE)
    assert await page.locator("img").count() == 0 and await page.locator("#feed b").count() == 0
    await expect(page.locator("#unknown tbody td").nth(3)).to_have_text(HOSTILE)  # unknown list: text too
    await _shot(page, "hostile-phrase")
    assert page.dialogs == []


@pytest.mark.asyncio
async def test_clicking_a_hangup_shows_both_legs_of_the_call(console: Console, page: Any,
                                                             resolver: Resolver) -> None:
    await _open(page, console.url)
    console.bus.publish(hangup(resolver, call_id="call-9", leg_id="call-9.a"))
    console.bus.publish(hangup(resolver, sip="487", phrase="Request Terminated", call_id="call-9",
                               leg_id="call-9.b", trunk="internal"))
    await expect(_rows(page)).to_have_count(2)
    await _rows(page).first.click()
    legs = page.locator("#detail-legs .leg")
    await expect(legs).to_have_count(2)
    await expect(page.locator("#detail-id")).to_have_text("call-9")
    await expect(legs.nth(0)).to_contain_text("call-9.a")
    await expect(legs.nth(1)).to_contain_text("call-9.b")
    await expect(page.locator("#stats-trunk tbody tr")).to_have_count(2)  # counts refreshed after the events
    await expect(page.locator("#chart rect.bar:not(.empty)")).to_have_count(1)
    await _shot(page, "call-detail")
    assert page.errors == []


@pytest.mark.asyncio
async def test_token_console_opens_in_the_browser_with_the_token_link(page: Any, resolver: Resolver) -> None:
    served, runner = await _serve(ConsoleSettings(port=0, token="t0ken"))
    try:
        response = await page.goto(served.url + "/")
        assert response.status == 401
        await _open(page, served.url + "/?token=t0ken")
        assert "token" not in page.url
        served.bus.publish(hangup(resolver))
        await expect(_rows(page)).to_have_count(1)
    finally:
        await runner.cleanup()


@pytest.mark.asyncio
async def test_the_header_shows_each_parts_state_and_follows_its_changes(page: Any) -> None:
    from pbx_codes.status import Health, PartStatus

    health = Health()
    ami = PartStatus("AMI 127.0.0.1:5038")
    ami.set("refused", "AMI login as 'pbx-codes' refused: <b>Authentication failed</b>")
    health.add(ami)
    health.add(lambda: PartStatus("store sqlite", state="up"))
    runner, port = await start_console(ConsoleSettings(port=0), AnnotationBus(), health=health)
    try:
        await _open(page, f"http://127.0.0.1:{port}")
        refused = page.locator("#parts li", has_text="AMI 127.0.0.1:5038")
        await expect(refused).to_have_text("AMI 127.0.0.1:5038: refused")
        await expect(refused).to_have_class("part part-down")
        assert "<b>Authentication failed</b>" in await refused.get_attribute("title")  # text, never markup
        await expect(page.locator("#parts li", has_text="store sqlite")).to_have_class("part part-up")
        await _shot(page, "parts-refused")
        ami.set("up", "logged in")
        await expect(refused).to_have_text("AMI 127.0.0.1:5038: up", timeout=15_000)  # the next 5 s refresh
        assert page.errors == []
    finally:
        await runner.cleanup()


@pytest.mark.asyncio
async def test_a_burst_of_thousands_reaches_the_page_whole_newest_on_top(console: Console, page: Any,
                                                                          resolver: Resolver) -> None:
    await _open(page, console.url)
    base = hangup(resolver, leg_id="burst", trunk="lifecell")
    burst = 5000  # a second of a fleet at 5,000 hangups/s, published at once
    for i in range(burst):
        console.bus.publish(replace(base, observation=replace(base.observation, leg_id=f"burst-{i}",
                                                             number=f"+38044{i:07d}")))
    await expect(page.locator("body")).to_have_attribute("data-received", str(burst), timeout=30_000)
    rows = page.locator("#feed tbody tr")
    await expect(rows).to_have_count(500)  # the table keeps the newest it can show
    await expect(rows.first.locator("td.number")).to_have_text("+********4999")  # the last published
    assert page.errors == []
