"""`pbx-codes bench call --code 503 --phrase "..." --catalog lifecell --json`, `--scenario ring-timeout`,
`--failover "503 Service Unavailable" "200 OK"`: one real call.

Starts the bench's Asterisk (Debian sid in a chroot on 127.0.0.1, the project's own asterisk/ config), runs the
pbx-codes FastAGI server in this process on the port that Asterisk calls from its hangup handler, has a sipp
carrier fail (or answer, or ring until cancelled) one call, and prints the CDR record(s) Asterisk wrote. What the
user sees is what their own Asterisk would write with the shipped config.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
from collections.abc import Callable
from typing import Any

from pbx_codes.cli.common import EXIT_OK, CliError, add_lang_option, print_json

#: The CDR fields shown without --json, in this order.
SUMMARY_FIELDS = ("disposition", "pbx_dialstatus", "pbx_rawcause", "pbx_catalog", "pbx_code", "pbx_phrase",
                  "pbx_category", "pbx_retry", "pbx_q850", "pbx_exact", "pbx_reason")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bench", help="a real Asterisk on loopback for trying pbx-codes (root, sipp)")
    bench_sub = p.add_subparsers(dest="bench_command", required=True)
    call = bench_sub.add_parser(
        "call", help="place one real call through the bench and print its CDR record(s)",
        description="One real call through the bench's Asterisk: a carrier's final answer (--code), a call shape "
                    "(--scenario) or a failover chain (--failover). Prints every CDR record of the call.")
    call.add_argument("--pbx", default="asterisk", choices=["asterisk"], help="which PBX the bench runs")
    what = call.add_mutually_exclusive_group(required=True)
    what.add_argument("--code",
                      help="the carrier's final SIP status (e.g. 503), 200 to answer, or 'cancel' to hang up ringing")
    what.add_argument("--scenario", choices=list(SCENARIOS), help="a call shape: " + "; ".join(
        f"{name}: {text}" for name, text in SCENARIOS.items()))
    what.add_argument("--failover", nargs="+", metavar="'CODE PHRASE'",
                      help="carriers answering in turn through the shipped failover example (200 answers), "
                           "e.g. --failover '503 Service Unavailable' '486 Busy Here'")
    call.add_argument("--phrase", default="", help="with --code: the carrier's reason phrase, exactly as it sends it")
    call.add_argument("--catalog", help="catalog the call names (X-PBX-Codes-Catalog); default: the trunk's")
    call.add_argument("--json", action="store_true",
                      help="print each CDR record as one JSON object per line (always so with --scenario/--failover)")
    call.add_argument("--store", metavar="URL",
                      help="also run the AMI listener and a store at URL (sqlite:///... or postgresql://...) and "
                           'print the call\'s store rows, one {"store": {...}} object per line')
    call.add_argument("--rootfs", help="the provisioned root filesystem (default: PBX_CODES_ROOTFS or the cache)")
    call.add_argument("--provision", action="store_true",
                      help="build the root filesystem first when it is missing (debootstrap; takes minutes)")
    add_lang_option(call, default="uk")
    call.set_defaults(func=cmd_bench_call)


#: The call shapes, as ``--help`` lists them (the bench's `SHAPES`, without importing the bench at start-up).
SCENARIOS = {
    "unreachable": "nothing listens on the trunk: Asterisk's own 408 after its SIP timer",
    "silent": "the trunk never answers, the dial timeout ends it",
    "qualify-down": "qualify marked the trunk Unavailable: no INVITE at all",
    "ring-timeout": "the carrier rings, the dial timeout ends it",
    "caller-cancel": "the caller hangs up while it rings",
    "answered-carrier-bye": "answered, the carrier hangs up",
    "answered-caller-bye": "answered, the caller hangs up",
}

#: The variable the in-process AMI listener reads the bench's secret from (never argv).
_SECRET_ENV = "PBX_CODES_BENCH_AMI_SECRET"


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _plan(args: argparse.Namespace) -> Callable[[Any], str]:
    """Check the request before touching anything; returns what places the call (bench -> caller id)."""
    from pbx_codes.testbed import shapes
    from pbx_codes.testbed.asterisk import ROUTES
    from pbx_codes.testbed.sipp import check_phrase, plan_call, run_call

    try:
        if args.scenario:
            return lambda bench: shapes.place_shape(bench, args.scenario, args.catalog)
        if args.failover:
            chain = [shapes.parse_link(link) for link in args.failover]
            for _, phrase in chain:
                check_phrase(phrase)
            if len(chain) > len(ROUTES):
                raise ValueError(f"a failover chain has at most {len(ROUTES)} carriers")
            return lambda bench: shapes.place_failover(bench, chain, args.catalog)
        plan_call(args.code, args.phrase, args.catalog)
        return lambda bench: run_call(bench, args.code, args.phrase, args.catalog)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def cmd_bench_call(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pbx_codes.testbed.asterisk import AsteriskBench, BenchError, default_rootfs
    from pbx_codes.testbed.inprocess import PbxCodesInProcess

    place = _plan(args)
    if os.geteuid() != 0:
        raise CliError("bench call needs root (Asterisk runs in a chroot); run it with sudo")
    if shutil.which("sipp") is None:
        raise CliError("sipp is not installed (Debian/Ubuntu package: sip-tester)")
    rootfs = Path(args.rootfs) if args.rootfs else default_rootfs()
    bench = AsteriskBench(rootfs=rootfs, agi_address=f"127.0.0.1:{_free_tcp_port()}", lock_timeout=120)
    if not bench.provisioned:
        if not args.provision:
            raise CliError(f"no provisioned Asterisk root filesystem in {rootfs}; build it with --provision "
                           "(or scripts/provision-asterisk-rootfs.sh), or point --rootfs/PBX_CODES_ROOTFS at one")
        try:
            bench.provision()
        except BenchError as exc:
            raise CliError(f"provisioning {rootfs} failed: {str(exc).splitlines()[0]}") from None
    store_rows: list[dict[str, Any]] = []
    try:
        with bench:
            os.environ[_SECRET_ENV] = bench.ami_secret
            with PbxCodesInProcess(bench, language=args.lang or "uk", ami=args.store is not None,
                                   ami_secret_env=_SECRET_ENV, store_url=args.store) as pbx:
                rows = bench.wait_cdr_rows(place(bench))
                if args.store is not None and rows:
                    pbx.wait_until(lambda: _settled(pbx, rows), timeout=5)
                    store_rows = pbx.store_rows(str(rows[0].get("linkedid") or ""))
    except BenchError as exc:
        raise CliError(str(exc)) from None
    finally:
        os.environ.pop(_SECRET_ENV, None)
    if not rows:
        sys.stderr.write("pbx-codes: Asterisk wrote no CDR record for the call\n")
        return 1
    as_json = args.json or args.scenario or args.failover
    for row in rows:
        if as_json:
            print_json(row)
        else:
            print(" ".join(f"{name}={row.get(name, '')!r}" for name in SUMMARY_FIELDS))
    for store_row in store_rows:
        print_json({"store": store_row})
    return EXIT_OK


def _settled(pbx: Any, rows: list[dict[str, Any]]) -> bool:
    """The bus has every attempt the CDR lists (the AMI listener publishes a moment after the hangup)."""
    attempts = max((str(r.get("pbx_attempts") or "").count(";") + 1 for r in rows if r.get("pbx_attempts")),
                   default=1)
    linkedid = rows[0].get("linkedid")
    return sum(1 for a in pbx.bus_annotations if a.observation.call_id == linkedid) >= attempts
