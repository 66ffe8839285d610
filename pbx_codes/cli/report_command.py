"""`pbx-codes report`: trunk quality (ASR, NER, SER/SEER/ISA, PDD, SRD, ACD) over the store or over CDR files."""
from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pbx_codes.cli.common import CliError, add_catalog_options, resolver_from
from pbx_codes.quality.classes import QualityConfigError, load_table
from pbx_codes.quality.report import FORMATS, GROUPINGS, build, render

if TYPE_CHECKING:  # imported where used, for the CLI's start-up time
    from pbx_codes.quality.legs import Leg
    from pbx_codes.resolve import Resolver

_SPAN = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="trunk quality: ASR, NER, SEER, ISA, PDD, ACD per trunk",
                       description="Trunk quality over the annotation store (default) or directly over CDR files.")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--store", metavar="URL", help="sqlite:///path or postgresql://... (default: [store] url)")
    source.add_argument("--cdr", nargs="+", type=Path, metavar="FILE", help="CDR files to read instead of the store")
    p.add_argument("--preset", help="the CDR template (an enrich preset, e.g. freeswitch-cdr-csv)")
    p.add_argument("--columns", help="column names of a headerless CSV, comma-separated (overrides the preset's)")
    p.add_argument("--by", choices=tuple(GROUPINGS), default="trunk", help="group per trunk, PBX, hour or day")
    p.add_argument("--last", metavar="SPAN", help="the last 30m, 1h, 1d, 1w ... (store default: 1d)")
    p.add_argument("--from", dest="since", metavar="WHEN", help="start: ISO time (UTC if no zone) or epoch seconds")
    p.add_argument("--to", dest="until", metavar="WHEN", help="end (exclusive), like --from")
    p.add_argument("--trunk", help="only this trunk")
    p.add_argument("--instance", metavar="NAME", help="only this agent's legs (a fleet's shared store)")
    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument("--json", action="store_true", help="one JSON object per trunk (same as --format json)")
    p.add_argument("-o", "--output", type=Path, help="write here instead of standard output")
    add_catalog_options(p)
    p.set_defaults(func=cmd_report)


def parse_when(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"cannot read the time {text!r}: give ISO 8601 (2026-12-01T10:00) or epoch seconds") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def time_range(args: argparse.Namespace, default_last: str | None, now: float) -> tuple[float, float]:
    if args.last and (args.since or args.until):
        raise CliError("give --last or --from/--to, not both")
    last = args.last or (None if args.since or args.until else default_last)
    if last:
        match = _SPAN.match(last)
        if not match:
            raise CliError(f"--last {last!r}: expected a number and a unit (s, m, h, d, w), e.g. 1h or 7d")
        return now - float(match.group(1)) * _UNITS[match.group(2)], now + 1e-6
    since = parse_when(args.since) if args.since else float("-inf")
    until = parse_when(args.until) if args.until else float("inf")
    if since >= until:
        raise CliError("--from must be before --to")
    return since, until


def _store_legs(url: str, since: float, until: float, trunk: str | None,
                instance: str | None = None) -> list[Leg]:
    from pbx_codes.quality.source import legs_in_range
    from pbx_codes.store import open_store
    from pbx_codes.store.store import StoreConfigError

    if url.startswith("sqlite:"):
        from pbx_codes.store.store import sqlite_path
        path = sqlite_path(url)
        if path != ":memory:" and not Path(path).is_file():
            raise CliError(f"store {path}: no such database file")

    async def run() -> list[Leg]:
        try:
            store = await open_store(url, {"journal": ""})
        except StoreConfigError as exc:
            raise CliError(str(exc)) from None
        try:
            return await legs_in_range(store, max(since, 0.0), min(until, 1e12), trunk=trunk, instance=instance)
        except Exception as exc:  # an unreachable database is one line, never a traceback
            raise CliError(f"store {store.backend.describe()}: {exc}") from None
        finally:
            await store.backend.close()

    return asyncio.run(run())


def _cdr_legs(args: argparse.Namespace, resolver: Resolver, since: float, until: float) -> list[Leg]:
    from pbx_codes.enrich.mapping import MappingError, get_preset, parse_columns
    from pbx_codes.quality.cdr import read_legs

    if not args.preset:
        raise CliError("--cdr needs --preset (the CDR template: see `pbx-codes enrich --help`)")
    try:
        preset = get_preset(args.preset)
        columns = parse_columns(args.columns) if args.columns else None
        for path in args.cdr:
            if not path.is_file():
                raise CliError(f"{path}: no such file")
        legs, stats = read_legs(list(args.cdr), preset, resolver.resolve, columns=columns)
    except (MappingError, ValueError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot read the CDR files: {exc.strerror or exc}") from None
    if stats.malformed:
        sys.stderr.write(f"pbx-codes report: {stats.malformed} malformed row(s) skipped, {stats.rows} read\n")
    return [leg for leg in legs if since <= leg.ts < until and (not args.trunk or leg.trunk == args.trunk)
            and (not args.instance or leg.instance == args.instance)]


def cmd_report(args: argparse.Namespace) -> int:
    resolver, config = resolver_from(args)
    try:
        table = load_table(config.quality)
    except QualityConfigError as exc:
        raise CliError(str(exc)) from None
    now = time.time()
    since, until = time_range(args, None if args.cdr else "1d", now)
    if args.cdr:
        legs = _cdr_legs(args, resolver, since, until)
        origin = ", ".join(str(p) for p in args.cdr)
    else:
        url = args.store or (config.store.url if config.store else None)
        if not url:
            raise CliError("no store: give --store URL (or [store] url in the configuration), or --cdr FILE...")
        legs = _store_legs(url, since, until, args.trunk, args.instance)
        origin = "the annotation store"
    results = build(legs, table, by=args.by)
    fmt = "json" if args.json else args.format
    span = "" if since == float("-inf") and until == float("inf") else \
        f", {_fmt_time(since)} to {_fmt_time(until)}"
    text = render(results, fmt, subtitle=f"From {origin}{span}; {sum(r['seizures'] for r in results)} seizures.")
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _fmt_time(value: float) -> str:
    if value in (float("inf"), float("-inf")):
        return "any time"
    return datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
