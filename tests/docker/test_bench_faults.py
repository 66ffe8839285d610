"""Faults across the containers of the compose bench, each during a run of 300 failed calls (15 a second): the
plugin cut off from Asterisk's network for 10 s, Asterisk killed and started again, PostgreSQL restarted, the plugin
container restarted. After each: every CDR Asterisk wrote is annotated (live, or by `pbx-codes enrich` over its
CSV afterwards), the store holds exactly one row per call (live, or after `pbx-codes backfill` from the same CDRs),
and no call twice. The numbers of each run go to artifacts/docker/faults.json (the README's fault table)."""
from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from support.docker_bench import REPO, DockerBench, carriers, wait_for

pytestmark = pytest.mark.docker

CALLS = 300
RATE = 15
OUTAGE = 10.0  # seconds the plugin stays cut off: the length of the fault, not a wait for anything
CARRIER = carriers()[0]
SERVICES = ("postgres", "plugin", "prometheus", "carrier", "asterisk", "caller")
RESULTS = REPO / "artifacts" / "docker" / "faults.json"


def cut_plugin_off(bench: DockerBench) -> None:
    network = f"{bench.project}_bench"
    plugin = bench.container("plugin")
    bench.docker("network", "disconnect", network, plugin)
    time.sleep(OUTAGE)
    bench.docker("network", "connect", "--alias", "plugin", network, plugin)


def kill_asterisk(bench: DockerBench) -> None:
    asterisk = bench.container("asterisk")
    bench.docker("kill", "--signal", "KILL", asterisk)
    bench.docker("start", asterisk)  # the restart policy may have been first; starting a running one is a no-op


def restart_postgres(bench: DockerBench) -> None:
    bench.docker("restart", "-t", "5", bench.container("postgres"))


def restart_plugin(bench: DockerBench) -> None:
    bench.docker("restart", "-t", "5", bench.container("plugin"))


FAULTS: dict[str, Callable[[DockerBench], None]] = {
    "plugin cut off from Asterisk for 10 s (docker network disconnect)": cut_plugin_off,
    "Asterisk killed (SIGKILL) and started again": kill_asterisk,
    "PostgreSQL restarted": restart_postgres,
    "plugin container restarted": restart_plugin,
}


def record(name: str, numbers: dict[str, object]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    results[name] = numbers
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


@pytest.mark.parametrize("fault", list(FAULTS), ids=["plugin-cut", "asterisk-killed", "postgres-restarted",
                                                     "plugin-restarted"])
def test_fault_loses_no_annotation_and_no_store_row(docker_bench: DockerBench, fault: str, tmp_path: Path) -> None:
    bench = docker_bench
    tag = "8" + str(uuid.uuid4().int)[:10]
    calls = subprocess.Popen(bench.sipp_command(CARRIER, tag, CALLS, RATE), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        # The fault strikes once calls flow (a tenth of the run has its CDRs).
        wait_for(lambda: len(bench.records_from(tag)) >= CALLS // 10, 60, "calls flowing before the fault")
        FAULTS[fault](bench)
        calls.wait(timeout=400)
    finally:
        if calls.poll() is None:
            calls.kill()
    bench.placed[CARRIER.trunk] += CALLS
    bench.wait_healthy(*SERVICES)

    cdrs = bench.records_from(tag)
    linkedids = [r["linkedid"] for r in cdrs]
    annotated_live = sum(1 for r in cdrs if r.get("pbx_code"))
    # The store's live path settles (its journal replays after a database outage) or stops gaining rows.
    last: list[int] = [-1]

    def settled() -> bool:
        now = len({row["linkedid"] for row in bench.store_rows(linkedids)})
        done = now == len(set(linkedids)) or now == last[0]
        last[0] = now
        return done

    wait_for(settled, 60, "the store's live path settled")
    rows_live = bench.store_rows(linkedids)
    enriched = [r for r in bench.enrich_cdrs(tmp_path) if r.get("src") == tag]
    annotated_after = sum(1 for r in enriched if r.get("pbx_code"))

    backfill = "not available"
    if bench.backfill_available():
        result = bench.backfill_store()
        assert result.returncode == 0, result.stderr
        backfill = "ran"
    rows = bench.store_rows(linkedids)
    per_call = Counter(row["linkedid"] for row in rows)
    duplicates = sum(n - 1 for n in per_call.values())
    numbers = {
        "calls placed": CALLS, "CDRs": len(cdrs), "annotated live": annotated_live,
        "annotated after enrich": annotated_after, "store rows live": len(rows_live),
        "store rows after backfill": len(rows), "calls without a store row": len(set(linkedids) - set(per_call)),
        "duplicated rows": duplicates, "backfill": backfill,
    }
    record(fault, numbers)

    assert len(cdrs) >= 200, numbers
    assert len(enriched) == len(cdrs), numbers
    assert annotated_after == len(cdrs), f"CDRs left without an annotation: {numbers}"
    assert duplicates == 0, f"a call stored twice: {numbers}"
    assert set(per_call) == set(linkedids), f"calls missing from the store: {numbers}"
