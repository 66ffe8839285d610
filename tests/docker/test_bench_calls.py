"""Real calls through the compose bench, one per carrier of docker/sipp/carriers.txt (every lifecell and sipcall
code the bench plays): the annotated CDR record Asterisk wrote (read from its volume), the row in the PostgreSQL
container, the series in Prometheus (and its alert rules), the live feed of the console in Chromium on the host."""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from typing import Any

import pytest

from pbx_codes.resolve import Resolver
from support.browser import CHROMIUM_ARGS
from support.docker_bench import REPO, SCRIPT, Carrier, DockerBench, carriers, wait_for

pytestmark = pytest.mark.docker

CARRIERS = carriers()
ARTIFACTS = REPO / "artifacts" / "docker"


def caller_id() -> str:
    return "7" + str(uuid.uuid4().int)[:10]


@pytest.fixture(scope="module")
def round_of_calls(docker_bench: DockerBench) -> dict[str, dict[str, Any]]:
    """One call to every carrier, each from its own caller id; trunk -> the CDR record Asterisk wrote for it."""
    ids = {c.trunk: caller_id() for c in CARRIERS}
    for carrier in CARRIERS:
        docker_bench.place(carrier, ids[carrier.trunk])
    return {trunk: docker_bench.wait_records(src, 1)[0] for trunk, src in ids.items()}


@pytest.mark.parametrize("carrier", CARRIERS, ids=lambda c: f"{c.catalog}-{c.code}-{c.port}")
def test_cdr_record_carries_the_catalogs_annotation(round_of_calls: dict[str, dict[str, Any]], carrier: Carrier,
                                                    resolver: Resolver) -> None:
    record = round_of_calls[carrier.trunk]
    expected = resolver.lookup(carrier.code, carrier.phrase, catalog=carrier.catalog)
    assert record["pbx_trunk"] == carrier.trunk
    assert record["pbx_rawcause"] == f"SIP {carrier.code} {carrier.phrase}"
    assert (record["pbx_catalog"], record["pbx_code"], record["pbx_phrase"]) == (
        carrier.catalog, carrier.code, carrier.phrase)
    assert record["pbx_exact"] == "1"
    assert (record["pbx_category"], record["pbx_retry"]) == (expected.category.value, expected.retry.value)
    # The reason in the configured language, on one line (line breaks never reach a CDR) and cut where FastAGI
    # bounds a variable (max_bytes) for a long one.
    reason = " ".join(record["pbx_reason"].split())
    assert reason and " ".join(expected.text("uk").split()).startswith(reason), reason


@pytest.mark.parametrize("carrier", CARRIERS, ids=lambda c: f"{c.catalog}-{c.code}-{c.port}")
def test_store_has_one_row_per_call_matching_its_cdr(docker_bench: DockerBench,
                                                     round_of_calls: dict[str, dict[str, Any]],
                                                     carrier: Carrier) -> None:
    record = round_of_calls[carrier.trunk]
    wait_for(lambda: docker_bench.store_rows([record["linkedid"]]), 30, f"store row of {carrier.trunk}")
    rows = docker_bench.store_rows([record["linkedid"]])
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row["trunk"], row["catalog"], row["code"], row["phrase"]) == (
        carrier.trunk, carrier.catalog, carrier.code, carrier.phrase)
    assert (row["category"], row["retry"]) == (record["pbx_category"], record["pbx_retry"])


def series(docker_bench: DockerBench) -> dict[tuple[str, str, str, str], float]:
    """(trunk, catalog, category, code) -> the plugin's pbx_codes_hangups_total as Prometheus scraped it."""
    data = docker_bench.prometheus("/api/v1/query", query="pbx_codes_hangups_total")
    return {(s["metric"]["trunk"], s["metric"]["catalog"], s["metric"]["category"], s["metric"]["code"]):
            float(s["value"][1]) for s in data["result"]}


def test_prometheus_counts_every_call_by_trunk_catalog_category_and_code(
        docker_bench: DockerBench, round_of_calls: dict[str, dict[str, Any]]) -> None:
    want = {(r["pbx_trunk"], r["pbx_catalog"], r["pbx_category"], r["pbx_code"]): float(
        docker_bench.placed[r["pbx_trunk"]]) for r in round_of_calls.values()}
    wait_for(lambda: {k: v for k, v in series(docker_bench).items() if k in want} == want, 30,
             "Prometheus scraped every call")
    assert {k[0] for k in series(docker_bench)} == {c.trunk for c in CARRIERS}, "a series for no trunk of the bench"


def test_prometheus_loads_the_alert_rules_and_fires_on_a_billing_refusal(
        docker_bench: DockerBench, round_of_calls: dict[str, dict[str, Any]]) -> None:
    groups = docker_bench.prometheus("/api/v1/rules")["groups"]
    names = {rule["name"] for group in groups for rule in group["rules"]}
    assert {"PbxCodesCapacityShare", "PbxCodesBilling", "PbxCodesUnknownCodes", "PbxCodesListenerDown",
            "PbxCodesDown"} <= names
    billing = {r["pbx_trunk"] for r in round_of_calls.values() if r["pbx_category"] == "billing"}
    assert billing, "the bench plays no billing refusal"

    def firing() -> set[str]:
        alerts = docker_bench.prometheus("/api/v1/alerts")["alerts"]
        return {a["labels"].get("trunk", "") for a in alerts
                if a["labels"]["alertname"] == "PbxCodesBilling" and a["state"] == "firing"}

    wait_for(lambda: billing <= firing(), 60, "PbxCodesBilling firing")


def test_console_in_chromium_shows_the_calls_live(docker_bench: DockerBench, resolver: Resolver) -> None:
    playwright = pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")
    chromium = "/usr/bin/chromium"
    if shutil.which(chromium) is None:
        pytest.skip(f"Chromium is not installed at {chromium} (apt-get install chromium)")
    expect = playwright.expect
    ids = {c.trunk: caller_id() for c in CARRIERS}

    async def run() -> None:
        async with playwright.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 1000})
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                await page.goto(docker_bench.console_url())
                assert "token" not in page.url, "the console keeps the token out of the address"
                await expect(page.locator("#conn")).to_have_text("live", timeout=15000)
                for carrier in CARRIERS:
                    await asyncio.to_thread(docker_bench.place, carrier, ids[carrier.trunk])
                for carrier in CARRIERS:
                    expected = resolver.lookup(carrier.code, carrier.phrase, catalog=carrier.catalog)
                    row = page.locator("#feed tbody tr").filter(
                        has=page.locator(".trunk", has_text=carrier.trunk)).first
                    await expect(row.locator(".code")).to_have_text(carrier.code, timeout=15000)
                    await expect(row.locator(".phrase")).to_have_text(carrier.phrase)
                    await expect(row.locator(".badge")).to_have_text(expected.category.value)
                    await expect(row.locator(".reason")).to_have_text(expected.text("uk"))
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(ARTIFACTS / "console-feed.png"), full_page=True)
                assert errors == []
            finally:
                await browser.close()

    asyncio.run(run())


def test_docker_bench_call_prints_the_annotated_cdr_record(docker_bench: DockerBench) -> None:
    """The README's own command: the record Asterisk wrote, as JSON, annotated."""
    result = subprocess.run([str(SCRIPT), "call", "--catalog", "lifecell", "503", "Simultaneous calls limit reached"],
                            capture_output=True, text=True, timeout=120, env=docker_bench.env)
    assert result.returncode == 0, result.stderr
    docker_bench.placed["lifecell-5061"] += 1
    record = json.loads(result.stdout)
    assert (record["pbx_catalog"], record["pbx_code"], record["pbx_category"], record["pbx_retry"]) == (
        "lifecell", "503", "capacity", "failover")
    assert record["pbx_reason"] == "перевищено ліміт одночасних викликів."


def test_docker_bench_call_names_the_carriers_when_none_answers_so(docker_bench: DockerBench) -> None:
    result = subprocess.run([str(SCRIPT), "call", "--catalog", "lifecell", "999"], capture_output=True, text=True,
                            timeout=60, env=docker_bench.env)
    assert result.returncode == 2 and result.stdout == ""
    assert "lifecell 503 Simultaneous calls limit reached" in result.stderr


def test_second_up_builds_nothing(docker_bench: DockerBench) -> None:
    """An `up` whose inputs did not change builds and recreates nothing. The checkout may change under a running
    session (a shared one does): an `up` that had something new to take in is followed by another, three at most."""
    outputs = []
    for _ in range(3):
        result = docker_bench.script("up", timeout=900)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stderr)
        if not any(word in result.stderr for word in ("building", "importing", "Recreating")):
            return
    pytest.fail("every `up` built or recreated something:\n" + "\n---\n".join(outputs)[-3000:])
