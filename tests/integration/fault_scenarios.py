"""Fault runs on the real bench: failed calls at a steady rate, one fault in the middle, then count and backfill.

Each run: a sipp carrier fails every INVITE with ``503 Simultaneous calls limit reached`` and a sipp caller places
``calls`` calls at ``rate`` calls/s into the bench's Asterisk (the shipped dialplan, catalog ``lifecell``). Faults
are placed by CDR count, not by time: the fault starts once a third of the calls have a record and ends when
another third have one (or at once, for a restart). Afterwards the run counts the records of its calls (by the
caller id in ``src``) in the cdr_custom CSV file and in the cdr_sqlite3_custom database, those the FastAGI server
annotated live (``pbx_category`` set), then runs ``pbx-codes enrich`` over a copy of each (the presets of the
shipped templates, which read ``pbx_rawcause``) and counts again.

Shared by tests/integration/test_faults.py (few calls, asserts the counts) and bench/fault_runs.py (more calls,
prints the table for the README).
"""
from __future__ import annotations

import csv
import json
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from integration.fault_rig import FaultRig
from pbx_codes.enrich.mapping import DONE_COLUMN, PBX_CDR_CUSTOM_COLUMNS, PBX_CDR_CUSTOM_LAYOUTS
from pbx_codes.testbed.asterisk import CDR_CSV, CDR_SQLITE, AsteriskBench
from pbx_codes.testbed.sipp import _end, _port_avoiding, _sipp_binary, _wait_bound, plan_call, render_uac, render_uas
from support.waiting import block_until

CATALOG_DIR = Path(__file__).resolve().parent / "catalogs"
REPO_DIR = Path(__file__).resolve().parents[2]
CODE, PHRASE, CATALOG = 503, "Simultaneous calls limit reached", "lifecell"
#: What the live server writes for that failure: backfilled rows must say the same.
EXPECTED = {"pbx_code": "503", "pbx_category": "capacity", "pbx_retry": "failover", "pbx_exact": "1"}
CSV_PRESET, SQLITE_PRESET = "asterisk-cdr-custom-pbx", "asterisk-sqlite3-custom"
#: A call whose messages stop (Asterisk went away after its 100 Trying) is abandoned by sipp after this long.
RECV_TIMEOUT_MS = 8000


@dataclass(frozen=True, slots=True)
class CdrCount:
    """The records of one run's calls in one CDR backend."""

    records: int
    annotated: int
    wrong: int = 0  # annotated, but not as the live server annotates a 503 from lifecell

    @property
    def missing(self) -> int:
        return self.records - self.annotated


@dataclass(frozen=True, slots=True)
class FaultOutcome:
    """What one run placed, what Asterisk recorded, what pbx-codes annotated live and after `enrich`."""

    fault: str
    calls: int
    caller_rc: int
    live: CdrCount  # the CSV file as Asterisk wrote it
    csv_after: CdrCount  # the CSV file `enrich` wrote beside a copy of it
    sqlite_live: CdrCount
    sqlite_after: CdrCount
    enrich_annotated: int  # what the CSV run reports it added
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {"fault": self.fault, "calls": self.calls, "cdrs": self.live.records,
                "annotated_live": self.live.annotated, "after_backfill": self.csv_after.annotated,
                "missing": self.csv_after.missing, "sqlite_cdrs": self.sqlite_after.records,
                "sqlite_missing": self.sqlite_after.missing, **self.extra}


# --- load --------------------------------------------------------------------------------------------------------

class SippLoad:
    """A sipp carrier failing every call and a sipp caller placing `calls` at `rate`, both in the background."""

    def __init__(self, bench: AsteriskBench, calls: int, rate: float) -> None:
        self.bench, self.calls, self.rate = bench, calls, rate
        self.src = "fault" + secrets.token_hex(5)
        self.timeout_s = int(calls / rate + 60)
        self._tmp = tempfile.TemporaryDirectory(prefix="pbx-codes-fault-")
        self._carrier: subprocess.Popen[bytes] | None = None
        self._caller: subprocess.Popen[bytes] | None = None

    def _args(self, scenario: Path, port: int, busy: set[int]) -> list[str]:
        return [_sipp_binary(), "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-mp",
                str(_port_avoiding(busy)), "-m", str(self.calls), "-nostdin", "-timeout", f"{self.timeout_s}s",
                "-recv_timeout", str(RECV_TIMEOUT_MS)]

    def start(self) -> SippLoad:
        plan = plan_call(CODE, PHRASE, CATALOG)
        work = Path(self._tmp.name)
        (work / "carrier.xml").write_text(render_uas(plan), encoding="utf-8")
        (work / "caller.xml").write_text(render_uac(plan, self.src), encoding="utf-8")
        busy = {self.bench.carrier_port, self.bench.sip_port}
        quiet = {"cwd": work, "stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL,
                 "stderr": subprocess.DEVNULL}
        self._carrier = subprocess.Popen(self._args(work / "carrier.xml", self.bench.carrier_port, busy), **quiet)
        _wait_bound(self.bench.carrier_port, self._carrier)
        self._caller = subprocess.Popen(
            [*self._args(work / "caller.xml", _port_avoiding(busy), busy), "-r", str(self.rate),
             "-l", str(max(10, int(self.rate * 2))), "-s", plan.exten, f"127.0.0.1:{self.bench.sip_port}"], **quiet)
        return self

    def wait(self) -> int:
        """The caller's exit status once it has placed every call (non-zero when some failed, e.g. mid-restart)."""
        assert self._caller is not None
        return _end(self._caller, self.timeout_s + 10)

    def close(self) -> None:
        for process in (self._caller, self._carrier):
            if process is not None and process.poll() is None:
                _end(process, 0.5)
        self._tmp.cleanup()

    def __enter__(self) -> SippLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- counting ----------------------------------------------------------------------------------------------------

def csv_rows(path: Path, src: str) -> list[dict[str, str]]:
    """The rows of calls from `src` in a file of the shipped cdr_custom CSV layout (or its enriched copy)."""
    if not path.exists():
        return []
    at = PBX_CDR_CUSTOM_COLUMNS.index("src")  # the same in every layout (each appends to the first)
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        return [dict(zip(PBX_CDR_CUSTOM_LAYOUTS[len(row)], row)) for row in csv.reader(fh)
                if len(row) in PBX_CDR_CUSTOM_LAYOUTS and row[at] == src]


def sqlite_rows(path: Path, src: str) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute("SELECT * FROM cdr WHERE src = ? ORDER BY rowid", (src,))]
    finally:
        con.close()


def count(rows: list[dict[str, Any]]) -> CdrCount:
    annotated = [r for r in rows if r.get(DONE_COLUMN)]
    wrong = sum(1 for r in annotated if any(str(r.get(k) or "") != v for k, v in EXPECTED.items()))
    return CdrCount(len(rows), len(annotated), wrong)


def wait_records(bench: AsteriskBench, src: str, at_least: int, timeout: float) -> int:
    """Wait until the run has `at_least` records in the CSV file; returns the count."""
    path = bench.rootfs / CDR_CSV
    return block_until(lambda: (found := len(csv_rows(path, src))) >= at_least and found, timeout, step=0.1,
                       what=f"{at_least} CDR records of {src}")


def wait_settled(bench: AsteriskBench, src: str, expected: int, quiet_polls: int = 5) -> int:
    """After the caller ended: wait for the last records (posted a few ms after each hangup) to be written: all
    `expected` of them, or none new for `quiet_polls` polls (the count is then checked by the caller)."""
    seen = {"last": -1, "stable": 0}

    def settled() -> bool:
        found = len(csv_rows(bench.rootfs / CDR_CSV, src))
        seen["stable"] = seen["stable"] + 1 if found == seen["last"] else 0
        seen["last"] = found
        return (found >= expected and seen["stable"] >= 2) or seen["stable"] >= quiet_polls
    block_until(settled, 15, step=0.1, what=f"the CDR records of {src} settled")
    return seen["last"]


# --- backfill ----------------------------------------------------------------------------------------------------

def run_enrich(source: Path, preset: str, work: Path) -> dict[str, Any]:
    """``pbx-codes enrich SOURCE --preset PRESET`` as a user runs it; returns its JSON summary."""
    summary = work / f"{source.name}.summary.json"
    cmd = [sys.executable, "-m", "pbx_codes", "enrich", str(source), "--preset", preset,
           "--catalog-dir", str(CATALOG_DIR), "--summary", str(summary), "--no-progress"]
    done = subprocess.run(cmd, cwd=REPO_DIR, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pbx-codes enrich failed ({done.returncode}): {done.stderr[-2000:]}")
    return dict(json.loads(summary.read_text(encoding="utf-8")))


def snapshot_sqlite(bench: AsteriskBench, target: Path) -> None:
    """A consistent copy of the live cdr_sqlite3_custom database (Asterisk may still be writing it)."""
    src = sqlite3.connect(f"file:{bench.rootfs / CDR_SQLITE}?mode=ro", uri=True, timeout=10)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


# --- one run -----------------------------------------------------------------------------------------------------

Fault = Callable[[], None]


def fault_run(name: str, bench: AsteriskBench, rig: FaultRig, *, calls: int, rate: float,
              begin: Fault, end: Fault | None = None, work: Path) -> FaultOutcome:
    """Drive `calls` failed calls; `begin` the fault after a third have a record, `end` it after two thirds."""
    work.mkdir(parents=True, exist_ok=True)
    third = max(1, calls // 3)
    with SippLoad(bench, calls, rate) as load:
        wait_records(bench, load.src, third, timeout=third / rate + 30)
        begin()
        if end is not None:
            wait_records(bench, load.src, 2 * third, timeout=third / rate + 30)
            end()
        caller_rc = load.wait()
        wait_settled(bench, load.src, calls)
        src = load.src
    # Everything below reads snapshots: the bench keeps running for the next run.
    csv_copy = work / "pbx_codes.csv"
    csv_copy.write_bytes((bench.rootfs / CDR_CSV).read_bytes())
    db_copy = work / "pbx_codes.db"
    snapshot_sqlite(bench, db_copy)
    live, sqlite_live = count(csv_rows(csv_copy, src)), count(sqlite_rows(db_copy, src))
    csv_summary = run_enrich(csv_copy, CSV_PRESET, work)
    run_enrich(db_copy, SQLITE_PRESET, work)  # in place, on the copy
    csv_after = count(csv_rows(work / "pbx_codes.enriched.csv", src))
    sqlite_after = count(sqlite_rows(db_copy, src))
    return FaultOutcome(name, calls, caller_rc, live, csv_after, sqlite_live, sqlite_after,
                        int(csv_summary.get("annotated", 0)), {"src": src})


# --- the four faults ----------------------------------------------------------------------------------------------

def _linkedids(bench: AsteriskBench, src: str, annotated_only: bool = False) -> set[str]:
    return {r["linkedid"] for r in csv_rows(bench.rootfs / CDR_CSV, src)
            if not annotated_only or r.get(DONE_COLUMN)}


def ami_cut(bench: AsteriskBench, *, calls: int, rate: float, work: Path) -> FaultOutcome:
    """The AMI listener's socket aborted twice mid-run. The CDR path does not use AMI: nothing may be missing;
    the listener reconnects, and what it publishes while away is the part it admits missing (its gap log)."""
    with FaultRig(bench, catalog_dirs=[str(CATALOG_DIR)], ami=True) as rig:
        before = rig.ami_connections
        outcome = fault_run("AMI connection cut", bench, rig, calls=calls, rate=rate, begin=rig.cut_ami,
                            end=rig.cut_ami, work=work)
        ids = _linkedids(bench, outcome.extra["src"])
        published = [a for a in rig.ami_published if a.observation.call_id in ids]
        reconnects = rig.ami_connections - before
        gaps = len(rig.listener.client.missed_windows) if rig.listener is not None else 0
    return _with(outcome, ami_published=len(published), ami_published_calls=len({a.observation.call_id
                                                                                  for a in published}),
                 ami_reconnects=reconnects, ami_gaps_logged=gaps)


def asterisk_restart(bench: AsteriskBench, *, calls: int, rate: float, work: Path) -> FaultOutcome:
    """The bench's Asterisk (its own PID) stopped and started again mid-run; the FastAGI server stays up."""
    pids = [bench.pid]
    took: list[float] = []

    def restart() -> None:
        began = time.monotonic()
        bench.restart()
        took.append(time.monotonic() - began)
        pids.append(bench.pid)

    with FaultRig(bench, catalog_dirs=[str(CATALOG_DIR)]) as rig:
        outcome = fault_run("Asterisk restarted", bench, rig, calls=calls, rate=rate, begin=restart, work=work)
    return _with(outcome, asterisk_pids=len(set(pids)), restart_s=round(sum(took), 1))


def agi_restart(bench: AsteriskBench, *, calls: int, rate: float, work: Path) -> FaultOutcome:
    """The FastAGI server stopped for a third of the run and started again on its port."""
    with FaultRig(bench, catalog_dirs=[str(CATALOG_DIR)]) as rig:
        outcome = fault_run("FastAGI server restarted", bench, rig, calls=calls, rate=rate, begin=rig.stop_agi,
                            end=rig.start_agi, work=work)
        return _with(outcome, agi_starts=rig.agi_starts)


def store_outage(bench: AsteriskBench, *, calls: int, rate: float, work: Path, store_url: str,
                 stop_database: Fault, start_database: Fault) -> FaultOutcome:
    """The store's database stopped (as by a crash) for a third of the run, then started again: every annotation
    the FastAGI server made must reach it, once."""
    with FaultRig(bench, catalog_dirs=[str(CATALOG_DIR)], store_url=store_url,
                  store_journal=work / "store-journal.jsonl") as rig:
        outcome = fault_run("store unavailable", bench, rig, calls=calls, rate=rate, begin=stop_database,
                            end=start_database, work=work)
        rig.flush_store(timeout=60)
        annotated = _linkedids(bench, outcome.extra["src"], annotated_only=True)
        stored = [i for i in rig.store_linkedids() if i in _linkedids(bench, outcome.extra["src"])]
        assert rig.store is not None
        stats = rig.store.stats
    return _with(outcome, store_rows=len(stored), store_distinct=len(set(stored)),
                 store_lost=len(annotated - set(stored)), store_write_failures=stats.failures,
                 store_dropped=stats.dropped, store_rejected=stats.rejected,
                 store_close_hung=rig.store_close_hung)


def _with(outcome: FaultOutcome, **extra: Any) -> FaultOutcome:
    return FaultOutcome(outcome.fault, outcome.calls, outcome.caller_rc, outcome.live, outcome.csv_after,
                        outcome.sqlite_live, outcome.sqlite_after, outcome.enrich_annotated,
                        {**outcome.extra, **extra})


__all__ = ["CdrCount", "FaultOutcome", "SippLoad", "agi_restart", "ami_cut", "asterisk_restart", "count", "csv_rows",
           "fault_run", "run_enrich", "sqlite_rows", "store_outage", "wait_records", "wait_settled"]
