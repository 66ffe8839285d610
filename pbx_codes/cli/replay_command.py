"""`pbx-codes replay --pbx asterisk|freeswitch FILE`: a raw capture through the live listeners' own code path."""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from pbx_codes.cli.common import EXIT_OK, CliError, add_catalog_options, add_lang_option, print_json, resolver_from
from pbx_codes.model import Annotation
from pbx_codes.protocols import ProtocolError
from pbx_codes.resolve import Resolver

OBSERVERS = {"asterisk": "pbx_codes.observers.asterisk", "freeswitch": "pbx_codes.observers.freeswitch"}
REPLAY_KEYS = ("pbx", "instance", "uniqueid", "linkedid", "channel", "trunk", "code", "phrase", "q850", "observed_q850",
               "catalog", "matched", "exact", "match_kind", "category", "retry", "fault", "hangup_by", "dial_status",
               "texts")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("replay", help="annotate the failed legs of a raw AMI or ESL capture")
    p.add_argument("file", help="raw bytes of one AMI connection or one ESL connection (plain or JSON events)")
    p.add_argument("--pbx", required=True, choices=sorted(OBSERVERS))
    p.add_argument("--catalog", help="catalog for every leg (default: trunk bindings, then the default catalog)")
    p.add_argument("--json", action="store_true", help="one JSON object per failed leg")
    p.add_argument("--store", metavar="URL", help="also record the annotations in a store (sqlite:///… or postgresql://…)")
    add_lang_option(p)
    add_catalog_options(p)
    p.set_defaults(func=cmd_replay)


def replay_file(pbx: str, data: bytes, resolver: Resolver, catalog: str | None) -> list[Annotation]:
    """The annotations the live listener would have produced for this capture."""
    observer = importlib.import_module(OBSERVERS[pbx])
    annotations: list[Annotation] = observer.replay(data, resolver, catalog=catalog)
    return annotations


def replay_dict(ann: Annotation, instance: str | None = None) -> dict[str, Any]:
    d = ann.to_dict()
    d["instance"] = d["instance"] or instance
    d["pbx"] = d["pbx"] or ann.observation.pbx
    return {k: d[k] for k in REPLAY_KEYS}


def cmd_replay(args: argparse.Namespace) -> int:
    resolver, config = resolver_from(args)
    if args.catalog and args.catalog not in resolver.catalogs:
        raise CliError(f"unknown catalog {args.catalog!r}; known: {', '.join(resolver.catalogs.ids())}")
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise CliError(f"{args.file}: cannot be read: {exc.strerror or exc}") from None
    try:
        annotations = replay_file(args.pbx, data, resolver, args.catalog)
    except (ProtocolError, ValueError) as exc:  # what the protocol cores and observers say of bytes they refuse
        raise CliError(f"{args.file}: not a readable {args.pbx} capture: {exc}") from None
    lang = args.lang or config.language
    for ann in annotations:
        if args.json:
            print_json(replay_dict(ann, config.instance))
        else:
            obs = ann.observation
            phrase = f" {ann.phrase}" if ann.phrase else ""
            print(f"{obs.leg_id} ({obs.channel or obs.trunk or '?'}): {ann.code or '-'}{phrase} -> "
                  f"{ann.category.value}, retry {ann.retry.value}, by {ann.hangup_by.value} [{ann.catalog}]: "
                  f"{ann.text(lang)}")
    if args.store:
        from pbx_codes.cli.store_bridge import record_annotations
        record_annotations(args.store, annotations, config.instance)
    if not annotations:
        sys.stderr.write("pbx-codes: no failed leg in this capture\n")
    return EXIT_OK
