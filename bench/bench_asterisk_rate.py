"""The highest call rate at which every failed call's CDR carries the pbx-codes annotation, on a real Asterisk.

sipp (caller) sends INVITEs into the bench's Asterisk at a fixed rate; a sipp carrier fails each one with
``503 Simultaneous calls limit reached``; the shipped dialplan's hangup handler calls the pbx-codes FastAGI server
running in this process (the AMI listener too, for the hangup timestamps). For each rate, a fixed number of calls:
the CDR records Asterisk wrote are counted, and those carrying ``pbx_code``/``pbx_category`` are the annotated ones.

Latencies reported per rate:
- ``agi``: one annotate session, from the complete request to the last CDR write answered (the server's clock);
- ``hangup->cdr``: from the carrier leg's Hangup (the AMI event's Timestamp) to that last write, i.e. how long after
  the failure the CDR holds the annotation.

Needs root, sipp and the provisioned root filesystem (see pbx_codes.testbed.asterisk).

    python3 bench/bench_asterisk_rate.py [--rates 5,10,20,40,80,160] [--calls 200] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pbx_codes.testbed.asterisk import AsteriskBench
from pbx_codes.testbed.inprocess import PbxCodesInProcess
from pbx_codes.testbed.sipp import _end, _port_avoiding, _sipp_binary, _wait_bound, plan_call, render_uac, render_uas

SECRET_ENV = "PBX_CODES_BENCH_AMI_SECRET"
PHRASE = "Simultaneous calls limit reached"


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)
    return {"p50": pick(0.50), "p90": pick(0.90), "p99": pick(0.99), "max": round(ordered[-1] * 1000, 2)}


def _sipp(scenario: Path, port: int, busy: set[int], calls: int, timeout_s: float) -> list[str]:
    return [_sipp_binary(), "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-mp",
            str(_port_avoiding(busy)), "-m", str(calls), "-nostdin", "-timeout", f"{int(timeout_s)}s", "-trace_err"]


def run_rate(bench: AsteriskBench, pbx: PbxCodesInProcess, rate: int, calls: int) -> dict[str, Any]:
    """Drive `calls` failed calls at `rate` calls/s; count and time what landed in the CDR."""
    plan = plan_call(503, PHRASE, "lifecell")
    src = "rate" + secrets.token_hex(5)
    timeout_s = calls / rate + 30
    with tempfile.TemporaryDirectory(prefix="pbx-codes-rate-") as tmp:
        work = Path(tmp)
        (work / "carrier.xml").write_text(render_uas(plan), encoding="utf-8")
        (work / "caller.xml").write_text(render_uac(plan, src), encoding="utf-8")
        busy = {bench.carrier_port, bench.sip_port}
        carrier = subprocess.Popen(_sipp(work / "carrier.xml", bench.carrier_port, busy, calls, timeout_s),
                                   cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            _wait_bound(bench.carrier_port, carrier)
            started = time.monotonic()
            caller = subprocess.Popen(
                [*_sipp(work / "caller.xml", _port_avoiding(busy), busy, calls, timeout_s), "-r", str(rate),
                 "-l", str(max(10, rate * 2)), "-s", plan.exten, f"127.0.0.1:{bench.sip_port}"],
                cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            caller_rc = _end(caller, timeout_s + 10)
            driven_s = time.monotonic() - started
            _end(carrier, 5)
        finally:
            if carrier.poll() is None:
                _end(carrier, 0.1)
    deadline = time.monotonic() + 15
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = [r for r in bench.cdr_rows() if r.get("src") == src]
        if len(rows) >= calls:
            break
        time.sleep(0.2)
    time.sleep(0.3)
    rows = [r for r in bench.cdr_rows() if r.get("src") == src]
    annotated = [r for r in rows if r.get("pbx_code") == "503" and r.get("pbx_category") == "capacity"]
    uniqueids = {r["uniqueid"] for r in rows}
    timings = {t.uniqueid: t for t in pbx.timings if t.uniqueid in uniqueids}
    hangups = {a.observation.channel: a.observation.timestamp for a in pbx.bus_annotations}
    to_cdr = []
    for row in rows:
        timing, hung_up = timings.get(row["uniqueid"]), hangups.get(row.get("dstchannel"))
        if timing is not None and hung_up is not None:
            to_cdr.append(timing.finished - hung_up)
    return {
        "rate": rate, "calls": calls, "sipp_caller_rc": caller_rc, "driven_s": round(driven_s, 2),
        "cdr_records": len(rows), "annotated": len(annotated),
        "all_annotated": len(rows) == calls and len(annotated) == calls,
        "agi_ms": _percentiles([t.duration for t in timings.values()]),
        "hangup_to_cdr_ms": _percentiles(to_cdr),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="5,10,20,40,80,160", help="calls per second, comma-separated")
    parser.add_argument("--calls", type=int, default=200, help="calls per rate")
    parser.add_argument("--json", action="store_true", help="one JSON object per rate")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (Asterisk runs in a chroot)", file=sys.stderr)
        return 2
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        agi_port = sock.getsockname()[1]
    bench = AsteriskBench(agi_address=f"127.0.0.1:{agi_port}", lock_timeout=600)
    os.environ[SECRET_ENV] = bench.ami_secret
    best = None
    with bench, PbxCodesInProcess(bench, ami=True, ami_secret_env=SECRET_ENV) as pbx:
        for rate in rates:
            result = run_rate(bench, pbx, rate, args.calls)
            if args.json:
                print(json.dumps(result))
            else:
                print(f"{rate:>4} calls/s: {result['cdr_records']:>4}/{args.calls} CDR records, "
                      f"{result['annotated']:>4} annotated ({'100%' if result['all_annotated'] else 'LOSS'}), "
                      f"driven in {result['driven_s']} s; agi ms {result['agi_ms']}; "
                      f"hangup->cdr ms {result['hangup_to_cdr_ms']}", flush=True)
            if result["all_annotated"]:
                best = rate
            else:
                break
        stats = pbx.agi.stats if pbx.agi else None
    print(f"highest rate with every CDR annotated: {best} calls/s (of {rates}); agi stats: {stats}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
