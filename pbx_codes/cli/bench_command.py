"""`pbx-codes bench call --pbx asterisk --code 503 --phrase "..." --catalog lifecell --json`: one real call.

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

from pbx_codes.cli.common import EXIT_OK, CliError, add_lang_option, print_json

#: The CDR fields shown without --json, in this order.
SUMMARY_FIELDS = ("disposition", "pbx_dialstatus", "pbx_rawcause", "pbx_catalog", "pbx_code", "pbx_phrase",
                  "pbx_category", "pbx_retry", "pbx_q850", "pbx_exact", "pbx_reason")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="a real Asterisk on loopback for trying pbx-codes (root, sipp)")
    bench_sub = p.add_subparsers(dest="bench_command", required=True)
    call = bench_sub.add_parser("call", help="place one real call through the bench and print its CDR record(s)")
    call.add_argument("--pbx", required=True, choices=["asterisk"], help="which PBX the bench runs")
    call.add_argument("--code", required=True,
                      help="the carrier's final SIP status (e.g. 503), 200 to answer, or 'cancel' to hang up ringing")
    call.add_argument("--phrase", default="", help="the carrier's reason phrase, exactly as it sends it")
    call.add_argument("--catalog", help="catalog the call names (X-PBX-Codes-Catalog); default: the trunk's")
    call.add_argument("--json", action="store_true", help="print each CDR record as one JSON object per line")
    call.add_argument("--rootfs", help="the provisioned root filesystem (default: PBX_CODES_ROOTFS or the cache)")
    call.add_argument("--provision", action="store_true",
                      help="build the root filesystem first when it is missing (debootstrap; takes minutes)")
    add_lang_option(call, default="uk")
    call.set_defaults(func=cmd_bench_call)


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cmd_bench_call(args: argparse.Namespace) -> int:
    from pbx_codes.bench.asterisk import AsteriskBench, BenchError, default_rootfs
    from pbx_codes.bench.inprocess import PbxCodesInProcess
    from pbx_codes.bench.sipp import plan_call
    from pathlib import Path

    try:
        plan_call(args.code, args.phrase, args.catalog)  # refuse a bad request before touching anything
    except ValueError as exc:
        raise CliError(str(exc)) from None
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
    try:
        with bench, PbxCodesInProcess(bench, language=args.lang or "uk"):
            rows = bench.place_call(args.code, args.phrase, args.catalog)
    except BenchError as exc:
        raise CliError(str(exc)) from None
    if not rows:
        sys.stderr.write("pbx-codes: Asterisk wrote no CDR record for the call\n")
        return 1
    for row in rows:
        if args.json:
            print_json(row)
        else:
            print(" ".join(f"{name}={row.get(name, '')!r}" for name in SUMMARY_FIELDS))
    return EXIT_OK
