"""The whole program on a real Asterisk 22: calls fail at a sipp carrier, and the operator's page shows why, live.

`pbx_codes.runtime.app.serve` runs in-process from a pbx-codes.toml (AMI listener + FastAGI on the bench's ports,
the trunk bound to the lifecell catalog, a capacity alert), with a SQLite store (`--store`) and the console
(`--console`) on a free loopback port. Headless Chromium keeps the console open while real calls are placed through
Asterisk; the page, `/metrics` and the SQLite file are then checked against the calls. Screenshots go to
artifacts/console/live-*.png and the measured feed latency to artifacts/console/live-latency.txt (measured and
printed, never asserted).

Needs root (the bench), sipp, Debian's /usr/bin/chromium and the playwright package; skipped with the reason
otherwise.
"""
from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from integration.live_console import (
    FEED_WATCH_JS,
    Latency,
    PlacedCall,
    ServeInBackground,
    ami_logged_in,
    free_tcp_port,
    latency_report,
    lifecell_entry,
    place,
    store_rows,
    write_config,
)
from pbx_codes.testbed.asterisk import AsteriskBench
from support.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from support.waiting import block_until

SECRET_ENV = "PBX_CODES_LIVE_AMI_SECRET"
TRUNK = "trunk"  # the bench's carrier endpoint: the AMI listener names the trunk after the dialed channel
WAIT_MS = 10_000  # how long the page may take to show something before the check fails (a bound, not a timing)

#: More than 45 % of a trunk's calls over 5 minutes being `capacity`, out of at least 3: fires on the 4th 503 after
#: the four other calls below, one of them answered (3 of 7 is not above 45 %, 4 of 8 is).
CAPACITY_RULE = {"name": "lifecell capacity", "trunk": "*", "category": "capacity", "above": 0.45, "window": 300,
                 "min_calls": 3}
MIXED_CALLS: list[tuple[int, str]] = [(486, "Busy Here"), (409, "Not enough money"), (200, ""),
                                      (480, "Temporarily Unavailable")]
CAPACITY = (503, "Simultaneous calls limit reached")
CAPACITY_RUN = 4

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
expect = sync_api.expect
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the Asterisk bench needs root (debootstrap, chroot)"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Chromium is not installed at {CHROMIUM}"),
]


@dataclass(slots=True)
class Live:
    """The running program, its files and the page an operator has open on it."""

    bench: AsteriskBench
    serve: ServeInBackground
    db: Path
    page: Any
    page_errors: list[str]


@dataclass(frozen=True, slots=True)
class CapacityRun:
    calls: list[PlacedCall]
    alerts_before_threshold: int  # alert items on the page once the first CAPACITY_RUN - 1 503s were shown
    api_alerts_before_threshold: int


@pytest.fixture(scope="module")
def live(asterisk_bench: AsteriskBench, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """`serve` from a TOML file with --store and --console, the AMI listener logged in, the page open and live."""
    if shutil.which("sipp") is None:
        pytest.skip("sipp is not installed (apt package sip-tester)")
    tmp = tmp_path_factory.mktemp("console-live")
    db = tmp / "annotations.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(SECRET_ENV, asterisk_bench.ami_secret)
        mp.delenv("PBX_CODES_CONSOLE_TOKEN", raising=False)  # loopback console: no token, as an operator runs it
        config = write_config(tmp / "pbx-codes.toml", asterisk_bench, secret_env=SECRET_ENV, alerts=[CAPACITY_RULE])
        # Another module's listener logs in as the same user: wait until its session is gone, so the one seen
        # below is this program's.
        block_until(lambda: not ami_logged_in(asterisk_bench), 15, what="an earlier AMI session has gone")
        running = ServeInBackground(config, store_url=f"sqlite://{db}", console=f"127.0.0.1:{free_tcp_port()}")
        try:
            running.wait_console()
            # The listener must see a call's DialBegin to follow it: no call before Asterisk lists its session.
            block_until(lambda: ami_logged_in(asterisk_bench), 15, what="the AMI listener logged in")
            with sync_api.sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
                page.goto(running.base + "/")
                expect(page.locator("#conn")).to_have_text("live", timeout=WAIT_MS)
                page.evaluate(FEED_WATCH_JS)
                yield Live(asterisk_bench, running, db, page, errors)
                context.close()
                browser.close()
        finally:
            running.stop()


@pytest.fixture(scope="module")
def calls(live: Live) -> list[PlacedCall]:
    """A mix of failures (and one answered call) through the lifecell trunk, one at a time."""
    return [place(live.bench, code, phrase) for code, phrase in MIXED_CALLS]


def _row(page: Any, call: PlacedCall) -> Any:
    return page.locator(f'#feed tbody tr[data-linkedid="{call.linkedid}"]')


def _rows(page: Any) -> Any:
    return page.locator("#feed tbody tr")


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"live-{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def capacity_run(live: Live, calls: list[PlacedCall]) -> CapacityRun:
    """The carrier starts answering 503 for several calls in a row; the alert state is noted before the last one."""
    placed = [place(live.bench, *CAPACITY) for _ in range(CAPACITY_RUN - 1)]
    for call in placed:
        _row(live.page, call).wait_for(state="attached", timeout=WAIT_MS)
    before = live.page.locator("#alerts li").count()
    api_before = len(live.serve.get_json("/api/alerts")["items"])
    placed.append(place(live.bench, *CAPACITY))
    return CapacityRun(placed, before, api_before)


@pytest.fixture(scope="module")
def all_calls(calls: list[PlacedCall], capacity_run: CapacityRun) -> list[PlacedCall]:
    return [*calls, *capacity_run.calls]


def _failed(calls: list[PlacedCall]) -> list[PlacedCall]:
    return [c for c in calls if c.failed]


def test_each_failed_call_appears_live_with_its_code_phrase_category_and_ukrainian_reason(
        live: Live, calls: list[PlacedCall]) -> None:
    page = live.page
    failed = _failed(calls)
    assert [c.code for c in failed] == ["486", "409", "480"]
    for call in failed:
        entry = lifecell_entry(call.code, call.phrase)
        row = _row(page, call)
        expect(row).to_have_count(1, timeout=WAIT_MS)
        expect(row.locator(".pbx")).to_have_text("asterisk")
        expect(row.locator(".trunk")).to_have_text(TRUNK)
        expect(row.locator(".code")).to_have_text(call.code)
        expect(row.locator(".phrase")).to_have_text(call.phrase)
        expect(row.locator(".badge")).to_have_text(entry.category.value)
        expect(row.locator(".reason")).to_have_text(entry.texts["uk"])
    answered = next(c for c in calls if not c.failed)
    # The 480 was placed after the answered call and is shown: had the answered one been published, it would be too.
    expect(_row(page, answered)).to_have_count(0)
    expect(_rows(page)).to_have_count(len(failed))
    _shot(page, "feed-uk")
    assert live.page_errors == []


def test_switching_the_language_to_en_changes_every_reason_text(live: Live, calls: list[PlacedCall]) -> None:
    page = live.page
    failed = _failed(calls)
    for call in failed:
        expect(_row(page, call)).to_have_count(1, timeout=WAIT_MS)
    page.select_option("#lang", "en")
    try:
        for call in failed:
            texts = lifecell_entry(call.code, call.phrase).texts
            assert texts["en"] != texts["uk"]
            expect(_row(page, call).locator(".reason")).to_have_text(texts["en"])
        _shot(page, "feed-en")
    finally:
        page.select_option("#lang", "uk")
    expect(_row(page, failed[0]).locator(".reason")).to_have_text(
        lifecell_entry(failed[0].code, failed[0].phrase).texts["uk"])


def test_category_and_code_filters_narrow_the_feed_to_the_matching_calls(live: Live,
                                                                         calls: list[PlacedCall]) -> None:
    page = live.page
    failed = _failed(calls)
    for call in failed:
        expect(_row(page, call)).to_have_count(1, timeout=WAIT_MS)
    shown = _rows(page).count()
    busy = [c for c in failed if c.code == "486"]
    page.select_option("select[name=category]", "busy")
    try:
        expect(_rows(page)).to_have_count(len(busy))
        expect(_row(page, busy[0]).locator(".badge")).to_have_text("busy")
        _shot(page, "filtered-busy")
        page.click("button[type=reset]")
        expect(_rows(page)).to_have_count(shown)
        page.select_option("select[name=trunk]", TRUNK)  # every call went out through the one bench trunk
        expect(_rows(page)).to_have_count(shown)
        page.fill("input[name=code]", "409")
        expect(_rows(page)).to_have_count(1)
        expect(_rows(page).first).to_have_attribute("data-linkedid", next(c for c in failed
                                                                           if c.code == "409").linkedid)
    finally:
        page.click("button[type=reset]")
    expect(_rows(page)).to_have_count(shown)


def test_alert_appears_on_the_page_when_the_carrier_answers_503_several_times_in_a_row(
        live: Live, capacity_run: CapacityRun) -> None:
    page = live.page
    assert [c.code for c in capacity_run.calls] == ["503"] * CAPACITY_RUN
    assert (capacity_run.alerts_before_threshold, capacity_run.api_alerts_before_threshold) == (0, 0)
    alert = page.locator("#alerts li").first
    expect(alert).to_have_class("alert alert-fired", timeout=WAIT_MS)
    expect(alert.locator(".name")).to_have_text(CAPACITY_RULE["name"])
    expect(alert.locator(".message")).to_contain_text(f"on {TRUNK} ")
    expect(page.locator("#alerts-empty")).to_be_hidden()
    row = _row(page, capacity_run.calls[-1])
    expect(row.locator(".badge")).to_have_text("capacity")
    expect(row.locator(".reason")).to_have_text(lifecell_entry(*map(str, CAPACITY)).texts["uk"])
    _shot(page, "alert")
    items = live.serve.get_json("/api/alerts")["items"]
    assert [(a["state"], a["trunk"], a["category"], a["calls"], a["hits"]) for a in items] == [
        ("fired", TRUNK, "capacity", 8, 4)]


def test_counts_panel_shows_the_calls_per_category_and_trunk(live: Live, all_calls: list[PlacedCall]) -> None:
    page = live.page
    failed = _failed(all_calls)
    per_category = Counter(lifecell_entry(c.code, c.phrase).category.value for c in failed)
    for category, n in per_category.items():
        row = page.locator("#stats-category tbody tr").filter(has=page.locator(f".badge.cat-{category}"))
        expect(row.locator("td").nth(3)).to_have_text(str(n), timeout=WAIT_MS)  # the 15-minute column
    trunk_row = page.locator("#stats-trunk tbody tr").filter(has_text=TRUNK)  # every call, answered ones too
    expect(trunk_row.locator("td").nth(3)).to_have_text(str(len(all_calls)), timeout=WAIT_MS)


def _hangup_counts(text: str) -> Counter[tuple[str, str, str, str, str]]:
    from prometheus_client.parser import text_string_to_metric_families

    counts: Counter[tuple[str, str, str, str, str]] = Counter()
    for family in text_string_to_metric_families(text):
        if family.name != "pbx_codes_hangups":
            continue
        for sample in family.samples:
            if sample.name == "pbx_codes_hangups_total":
                lb = sample.labels
                counts[(lb["pbx"], lb["trunk"], lb["catalog"], lb["category"], lb["code"])] += int(sample.value)
    return counts


def test_metrics_parse_and_the_hangup_counters_match_the_calls_placed(live: Live,
                                                                       all_calls: list[PlacedCall]) -> None:
    failed = _failed(all_calls)
    expected = Counter(("asterisk", TRUNK, "lifecell", lifecell_entry(c.code, c.phrase).category.value, c.code)
                       for c in failed)
    # An answered leg is counted too, as ok (lifecell has no 200 of its own: the standard catalog answers).
    expected.update(("asterisk", TRUNK, "sip", "ok", "200") for c in all_calls if not c.failed)
    block_until(lambda: sum(_hangup_counts(live.serve.get("/metrics").decode()).values()) >= len(all_calls), 10,
                what="every call counted in /metrics")
    text = live.serve.get("/metrics").decode("utf-8")
    assert _hangup_counts(text) == expected
    assert expected[("asterisk", TRUNK, "lifecell", "capacity", "503")] == CAPACITY_RUN


def test_store_holds_one_row_per_call_failed_ones_with_their_reason(live: Live, all_calls: list[PlacedCall]) -> None:
    failed = _failed(all_calls)
    block_until(lambda: len(store_rows(live.db)) >= len(all_calls), 10, what="every call stored")
    everything = store_rows(live.db)
    assert sorted(r["linkedid"] for r in everything if r["category"] == "ok") == sorted(
        c.linkedid for c in all_calls if not c.failed)
    rows = [r for r in everything if r["category"] != "ok"]
    got = sorted((r["linkedid"], r["channel"], r["trunk"], r["catalog"], r["code"], r["phrase"], r["category"],
                  r["text_uk"]) for r in rows)
    want = []
    for c in failed:
        entry = lifecell_entry(c.code, c.phrase)
        want.append((c.linkedid, c.dstchannel, TRUNK, "lifecell", c.code, c.phrase, entry.category.value,
                     entry.texts["uk"]))
    assert got == sorted(want)


def test_feed_latency_of_every_failed_call_is_measured_and_recorded(live: Live,
                                                                    all_calls: list[PlacedCall]) -> None:
    failed = _failed(all_calls)
    for call in failed:
        expect(_row(live.page, call)).to_have_count(1, timeout=WAIT_MS)
    seen = live.page.evaluate("() => window.__feedSeen")
    samples = []
    for call in failed:
        legs = live.serve.get_json(f"/api/call/{call.linkedid}")["legs"]
        assert len(legs) == 1 and isinstance(legs[0]["time"], float), legs
        samples.append(Latency(call.linkedid, call.code, legs[0]["time"], float(seen[call.linkedid])))
    report = latency_report(samples)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "live-latency.txt").write_text(report, encoding="utf-8")
    print("\n" + report)
    assert all(s.seconds > 0 for s in samples)  # the row follows the hangup: the two clocks are the same one
