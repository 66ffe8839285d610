"""Faults during a run of real failed calls through the real Asterisk, and what `pbx-codes enrich` backfills after.

For each fault, a sipp caller places ``--calls`` calls at ``--rate`` calls/s into the bench's Asterisk; a sipp
carrier fails each with ``503 Simultaneous calls limit reached``; the shipped dialplan's hangup handler calls the
pbx-codes FastAGI server in this process. The fault starts once a third of the calls have a CDR record and ends
once two thirds have one:

- AMI connection cut: the AMI listener's socket is aborted (twice); it reconnects by itself.
- Asterisk restarted: the bench's Asterisk (the PID it started, nothing else) is stopped and started again.
- store unavailable: the PostgreSQL server of the annotation store is stopped (``-m immediate``, as a crash looks
  to clients) and started again; the store must end up with every annotation the FastAGI server made.
- FastAGI server restarted: stopped, calls go on unannotated (the dialplan still stores ``pbx_rawcause``), started.

Then the run's records are counted in the cdr_custom CSV file; ``pbx-codes enrich`` (preset
``asterisk-cdr-custom-pbx``) writes an enriched copy beside a snapshot of it, and the count is taken again; the
same for the cdr_sqlite3_custom database (preset ``asterisk-sqlite3-custom``, in place on a copy).

Needs root, sipp, the provisioned root filesystem (see pbx_codes.testbed.asterisk) and, for the store run, Debian's
PostgreSQL server and psycopg (skipped with a note otherwise).

    python3 bench/fault_runs.py [--calls 300] [--rate 10] [--faults ami,restart,store,agi] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from integration import fault_scenarios as fs  # noqa: E402
from pbx_codes.testbed.asterisk import AsteriskBench  # noqa: E402

COLUMNS = (("fault", "fault"), ("calls", "calls placed"), ("cdrs", "CDRs"), ("annotated_live", "annotated live"),
           ("after_backfill", "annotated after backfill"), ("missing", "missing"),
           ("sqlite_missing", "missing (SQLite)"))


def _free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _store_run(bench: AsteriskBench, calls: int, rate: float, work: Path) -> fs.FaultOutcome | str:
    try:
        import psycopg  # noqa: F401

        from conftest_postgres import LocalPostgres, PostgresUnavailable
    except ImportError as exc:
        return f"skipped: {exc}"
    try:
        server = LocalPostgres.launch()
    except (PostgresUnavailable, OSError) as exc:
        return f"skipped: {exc}"
    try:
        return fs.store_outage(bench, calls=calls, rate=rate, work=work, store_url=server.create_database(),
                               stop_database=lambda: server.stop("immediate"), start_database=server.start)
    finally:
        server.cleanup()


def _note(outcome: fs.FaultOutcome) -> str:
    extra = outcome.extra
    if "ami_published" in extra:
        return (f"AMI: {extra['ami_reconnects']} reconnects, {extra['ami_gaps_logged']} gaps logged, "
                f"{extra['ami_published_calls']} of {outcome.live.records} calls published")
    if "store_rows" in extra:
        return (f"store: {extra['store_rows']} rows for {outcome.live.annotated} live annotations "
                f"({extra['store_lost']} lost, {extra['store_write_failures']} failed writes retried, "
                f"{extra['store_dropped']} dropped)")
    if "agi_starts" in extra:
        return f"FastAGI server started {extra['agi_starts']} times"
    return (f"Asterisk stopped and booted again in {extra.get('restart_s')} s "
            f"({extra.get('asterisk_pids')} PIDs in the run); "
            f"{outcome.calls - outcome.live.records} calls got no CDR (sipp caller exit {outcome.caller_rc})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per fault run")
    parser.add_argument("--rate", type=float, default=10, help="calls per second")
    parser.add_argument("--faults", default="ami,restart,store,agi", help="which runs, comma-separated")
    parser.add_argument("--json", action="store_true", help="one JSON object per run")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (Asterisk runs in a chroot)", file=sys.stderr)
        return 2
    bench = AsteriskBench(agi_address=f"127.0.0.1:{_free_tcp_port()}", lock_timeout=600)
    if not bench.provisioned:
        bench.provision()
    results: list[tuple[dict[str, Any], str]] = []
    with bench, tempfile.TemporaryDirectory(prefix="pbx-codes-faults-") as tmp:
        for name in [f.strip() for f in args.faults.split(",") if f.strip()]:
            work = Path(tmp) / name
            kwargs = {"calls": args.calls, "rate": args.rate, "work": work}
            if name == "ami":
                outcome: fs.FaultOutcome | str = fs.ami_cut(bench, **kwargs)
            elif name == "restart":
                outcome = fs.asterisk_restart(bench, **kwargs)
            elif name == "agi":
                outcome = fs.agi_restart(bench, **kwargs)
            elif name == "store":
                outcome = _store_run(bench, args.calls, args.rate, work)
            else:
                parser.error(f"unknown fault {name!r}")
            if isinstance(outcome, str):
                print(f"{name}: {outcome}", file=sys.stderr)
                continue
            row = outcome.row()
            if args.json:
                print(json.dumps(row), flush=True)
            results.append((row, _note(outcome)))
    if not args.json:
        print(f"{args.calls} calls per run at {args.rate:g} calls/s; backfill: pbx-codes enrich "
              f"--preset {fs.CSV_PRESET} (CSV), --preset {fs.SQLITE_PRESET} (SQLite)\n")
        print("| " + " | ".join(title for _, title in COLUMNS) + " | notes |")
        print("|" + "|".join(" --- " for _ in range(len(COLUMNS) + 1)) + "|")
        for row, note in results:
            print("| " + " | ".join(str(row[key]) for key, _ in COLUMNS) + f" | {note} |")
    return 0 if all(row["missing"] == 0 and row["sqlite_missing"] == 0 for row, _ in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
