"""The fleet in containers (docker/compose.fleet.yaml): two Asterisk PBXs, each with its agent, one PostgreSQL and
the central console. Calls through either PBX appear live in the one console (headless Chromium), each with its
agent's instance; an agent killed mid-run and a PBX killed mid-run lose nothing once back (the agent's backfill from
its PBX's own CDRs), and no call is stored twice."""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest

from support.browser import CHROMIUM_ARGS
from support.docker_bench import REPO, SCRIPT, DockerBench, carriers, free_tcp_port, wait_for

pytestmark = pytest.mark.docker

COMPOSE = REPO / "docker" / "compose.fleet.yaml"
STORE_URL = "postgresql://pbxcodes@postgres:5432/pbxcodes"
CARRIER = carriers()[0]
SERVICES = ("postgres", "carrier", "agent-a", "agent-b", "asterisk-a", "asterisk-b", "caller-a", "caller-b",
            "console")
ARTIFACTS = REPO / "artifacts" / "docker"


class Fleet(DockerBench):
    """The fleet bench: the compose bench's helpers, over the fleet's compose file and services."""

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        base = ["docker", "compose"] if subprocess.run(["docker", "compose", "version"], capture_output=True
                                                       ).returncode == 0 else ["docker-compose"]
        return subprocess.run([*base, "-p", self.project, "-f", str(COMPOSE), *args], capture_output=True,
                              text=True, timeout=timeout, cwd=REPO,
                              env={**os.environ, "PBX_CODES_FLEET_CONSOLE_PORT": str(self.console_port)})

    def sipp_to(self, pbx: str, caller_id: str, calls: int = 1, rate: float = 10.0) -> list[str]:
        return ["docker", "exec", self.container(f"caller-{pbx}"), "sipp", "asterisk:5060",
                "-sf", "/etc/pbx-codes-bench/caller.xml", "-s", str(CARRIER.port), "-key", "caller", caller_id,
                "-m", str(calls), "-r", str(rate), "-l", "200", "-nostdin", "-timeout", "180s",
                "-recv_timeout", "20000"]

    def cdrs(self, pbx: str, caller_id: str) -> list[dict[str, str]]:
        import csv
        import io

        from support.docker_bench import cdr_csv_fields
        text = self.exec(f"caller-{pbx}", "sh", "-c", "cat /cdr/pbx_codes.csv 2>/dev/null || true").stdout
        names = cdr_csv_fields()
        rows = [dict(zip(names, values)) for values in csv.reader(io.StringIO(text))]
        return [r for r in rows if r.get("src") == caller_id]

    def backfill(self, pbx: str) -> subprocess.CompletedProcess[str]:
        return self.exec(f"agent-{pbx}", "pbx-codes", "backfill", "--pbx", "asterisk", "--store", STORE_URL,
                         "--config", "/etc/pbx-codes/fleet.toml", "/var/log/asterisk/cdr-custom/pbx_codes.csv",
                         timeout=300, check=False)


@pytest.fixture(scope="module")
def fleet(docker_bench_images: None) -> Iterator[Fleet]:
    bench = Fleet(console_port=free_tcp_port(), prometheus_port=0, project=f"pbxcodes-fleet-{os.getpid()}")
    try:
        result = bench.compose("up", "-d", "--no-build", *SERVICES)
        assert result.returncode == 0, result.stderr[-4000:]
        bench.wait_healthy(*SERVICES, limit=180)
        yield bench
    finally:
        if not os.environ.get("PBX_CODES_DOCKER_KEEP"):
            bench.compose("down", "--volumes", "--remove-orphans", "-t", "5", timeout=300)


@pytest.fixture(scope="module")
def docker_bench_images() -> None:
    """The compose bench's images (built, or rebuilt when the sources changed) and its secrets."""
    from tests.docker.conftest import _missing  # the same reasons to skip as the compose bench
    missing = _missing()
    if missing:
        pytest.skip(missing)
    result = subprocess.run([str(SCRIPT), "build"], capture_output=True, text=True, timeout=1800, cwd=REPO)
    assert result.returncode == 0, result.stderr[-4000:]
    made = subprocess.run([str(REPO / "docker" / "make-secrets.sh")], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr


def test_calls_through_either_pbx_appear_live_in_the_one_console(fleet: Fleet) -> None:
    playwright = pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")
    chromium = "/usr/bin/chromium"
    if shutil.which(chromium) is None:
        pytest.skip(f"Chromium is not installed at {chromium} (apt-get install chromium)")
    expect = playwright.expect
    ids = {pbx: "7" + str(uuid.uuid4().int)[:10] for pbx in ("a", "b")}

    async def run() -> None:
        async with playwright.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 1000})
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                await page.goto(fleet.console_url())
                await expect(page.locator("#conn")).to_have_text("live", timeout=20000)
                for pbx in ("a", "b"):
                    await asyncio.to_thread(subprocess.run, fleet.sipp_to(pbx, ids[pbx]), capture_output=True,
                                            timeout=120)
                for pbx in ("a", "b"):
                    row = page.locator("#feed tbody tr").filter(
                        has=page.locator(".instance", has_text=f"pbx-{pbx}")).first
                    await expect(row.locator(".trunk")).to_have_text(CARRIER.trunk, timeout=20000)
                    await expect(row.locator(".code")).to_have_text(CARRIER.code)
                    await expect(row.locator(".phrase")).to_have_text(CARRIER.phrase)
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(ARTIFACTS / "fleet-console.png"), full_page=True)
                assert errors == []
            finally:
                await browser.close()

    asyncio.run(run())


def _run_with_fault(fleet: Fleet, pbx: str, fault: str, calls: int = 60, rate: float = 10.0) -> dict[str, int]:
    tag = "6" + str(uuid.uuid4().int)[:10]
    sipp = subprocess.Popen(fleet.sipp_to(pbx, tag, calls, rate), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(fleet.cdrs(pbx, tag)) >= calls // 6, 60, "calls flowing before the fault")
        target = fleet.container(f"{fault}-{pbx}")
        fleet.docker("kill", "--signal", "KILL", target)
        time.sleep(3.0)  # the length of the outage, not a wait for anything
        fleet.docker("start", target)
        sipp.wait(timeout=300)
    finally:
        if sipp.poll() is None:
            sipp.kill()
    fleet.wait_healthy(*SERVICES, limit=180)
    cdrs = fleet.cdrs(pbx, tag)
    linkedids = sorted({r["linkedid"] for r in cdrs})
    result = fleet.backfill(pbx)
    assert result.returncode == 0, result.stderr
    quoted = ",".join(f"'{lid}'" for lid in linkedids)
    rows = fleet.sql(f"SELECT linkedid, instance FROM hangups WHERE linkedid IN ({quoted})") if linkedids else []
    per_call = Counter(r[0] for r in rows)
    return {"CDRs": len(cdrs), "calls": len(linkedids), "stored": len(per_call),
            "duplicated": sum(n - 1 for n in per_call.values()),
            "other instance": sum(1 for r in rows if r[1] != f"pbx-{pbx}")}


@pytest.mark.parametrize("fault,pbx", [("agent", "a"), ("asterisk", "b")], ids=["agent-a-killed",
                                                                               "asterisk-b-killed"])
def test_a_pbx_or_agent_killed_mid_run_loses_nothing_once_back(fleet: Fleet, fault: str, pbx: str) -> None:
    numbers = _run_with_fault(fleet, pbx, fault)
    assert numbers["CDRs"] >= 10, numbers
    assert numbers["stored"] == numbers["calls"], f"calls missing from the store: {numbers}"
    assert numbers["duplicated"] == 0 and numbers["other instance"] == 0, numbers
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"fleet-{fault}-{pbx}.txt").write_text(f"{numbers}\n", encoding="utf-8")
