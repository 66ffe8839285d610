"""`pbx-codes backfill --pbx asterisk|freeswitch --store URL PATH...`: the PBX's own CDRs into the store.

For the calls that ended while the live listener was away (a PBX restart, a network cut): every leg in the CDR files
is observed by the live path's own code and stored under the same row identity, so legs already stored (live, or by
an earlier backfill) are not stored twice. Run it as often as you like over the same files.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from pbx_codes.cli.common import EXIT_OK, CliError, add_catalog_options, resolver_from
from pbx_codes.config import StoreSection
from pbx_codes.model import Annotation


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("backfill", help="store the legs in a PBX's own CDR files (idempotent)")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="CDR files or folders: FreeSWITCH json_cdr (*.json, either encode-values form) or cdr_csv "
                        "(pbx_codes template); Asterisk cdr_custom pbx_codes.csv or pbx_codes.json")
    p.add_argument("--pbx", required=True, choices=("asterisk", "freeswitch"))
    p.add_argument("--store", required=True, metavar="URL", help="sqlite:///… or postgresql://…")
    p.add_argument("--catalog", help="catalog for every leg (default: the leg's own, trunk bindings, the default)")
    add_catalog_options(p)
    p.set_defaults(func=cmd_backfill)


log = logging.getLogger("pbx_codes.cli")


async def _store(url: str, section: StoreSection | None, annotations: list[Annotation]) -> tuple[int, int]:
    from pbx_codes.store import open_store

    store = await open_store(url, section)
    store.start()
    try:
        before = await store.count()
        for i, ann in enumerate(annotations, 1):
            store.add(ann)
            if i % 1000 == 0:  # the writer's queue is bounded: let it drain
                await store.flush()
        await store.flush()
        after = await store.count()
    finally:
        await store.close()
    return before, after


def cmd_backfill(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from pbx_codes.backfill import BackfillError, read_observations

    resolver, config = resolver_from(args)
    if args.catalog and args.catalog not in resolver.catalogs:
        raise CliError(f"unknown catalog {args.catalog!r}; known: {', '.join(resolver.catalogs.ids())}")
    try:
        observations, stats = read_observations(args.pbx, args.paths)
    except BackfillError as exc:
        raise CliError(str(exc)) from None
    observations = [replace(o, instance=o.instance or config.instance) for o in observations]  # this agent's legs
    annotations = [resolver.resolve(replace(o, catalog=args.catalog) if args.catalog else o) for o in observations]
    try:
        before, after = asyncio.run(_store(args.store, config.store, annotations))
    except Exception as exc:
        from pbx_codes.store.dsn import safe_error, safe_url
        log.debug("backfill: the store failed", exc_info=True)
        raise CliError(f"store {safe_url(args.store)}: {safe_error(exc, args.store)}") from None
    added = after - before
    print(f"backfill: {stats.files} file(s), {stats.records} record(s), {len(annotations)} leg(s); "
          f"{added} new in the store, {len(annotations) - added} already there"
          + (f"; {stats.malformed} unreadable record(s)" if stats.malformed else ""))
    if stats.malformed:
        sys.stderr.write(f"pbx-codes: {stats.malformed} record(s) could not be read and were skipped\n")
    return EXIT_OK
