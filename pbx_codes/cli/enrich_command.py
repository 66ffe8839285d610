"""`pbx-codes enrich SOURCE --preset NAME`: add the pbx_* annotation to CDRs that already exist.

SOURCE is a CSV or JSON file (enriched into a new file beside it, e.g. Master.enriched.csv), a folder of
mod_json_cdr files (into FOLDER.enriched/), an SQLite database file or a postgresql:// URL (annotated in place).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pbx_codes.cli.common import EXIT_OK, CliError, add_catalog_options, add_lang_option, resolver_from
from pbx_codes.enrich import EnrichError, MappingError, RowAnnotator, enrich_file, get_preset
from pbx_codes.enrich.mapping import FIELDS, PRESETS, parse_columns, parse_overrides


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    presets = "; ".join(f"{p.name}: {p.description}" for p in PRESETS.values())
    p = sub.add_parser("enrich", help="annotate existing CDRs (CSV, JSON, SQLite, PostgreSQL)",
                       description=__doc__.split("\n\n")[0] + f" Presets: {presets}.")
    p.add_argument("source", help="CDR file, json_cdr folder, SQLite file, or postgresql:// URL")
    p.add_argument("--preset", required=True, choices=sorted(PRESETS), help="the CDR template SOURCE is written in")
    p.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN",
                   help=f"read FIELD from COLUMN (COL1|COL2 for candidates); FIELD is one of {', '.join(FIELDS)}")
    p.add_argument("--columns", metavar="A,B,C", help="names of a headerless file's columns (overrides the preset)")
    p.add_argument("--header", action="store_true", help="the file's first row names its columns")
    p.add_argument("-o", "--output", metavar="PATH", help="where the enriched file goes (default: beside SOURCE)")
    p.add_argument("--force", action="store_true", help="rewrite an output that is not a resumable run of SOURCE")
    p.add_argument("--table", help="table name for SQLite/PostgreSQL (default: cdr)")
    p.add_argument("--order-key", metavar="COLUMN", help="PostgreSQL: a unique column to walk the table by "
                   "(default: ctid)")
    p.add_argument("--summary", metavar="FILE", help="also write the run's summary as JSON to FILE")
    p.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="always show the progress bar (default: when stderr is a terminal)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    add_lang_option(p)
    add_catalog_options(p)
    p.set_defaults(func=cmd_enrich)


def cmd_enrich(args: argparse.Namespace) -> int:
    try:
        preset = get_preset(args.preset).with_overrides(parse_overrides(args.map))
        columns = parse_columns(args.columns) if args.columns else None
    except MappingError as exc:
        raise CliError(str(exc)) from None
    resolver, config = resolver_from(args)
    annotator = RowAnnotator(resolver.resolve, lang=args.lang or config.language, pbx=preset.pbx,
                             use_trunk=bool(resolver.bindings), quote_free=preset.tolerant)
    options = {"progress": args.progress}
    try:
        if preset.kind == "pgsql":
            if not args.source.startswith(("postgresql://", "postgres://")):
                raise CliError(f"preset {preset.name} reads PostgreSQL: SOURCE must be a postgresql:// URL")
            from pbx_codes.enrich.tables import enrich_postgres
            summary = enrich_postgres(args.source, preset, annotator, table=args.table, order_key=args.order_key,
                                      **options)
        elif preset.kind == "sqlite":
            from pbx_codes.enrich.tables import enrich_sqlite
            summary = enrich_sqlite(args.source, preset, annotator, table=args.table, **options)
        else:
            source = Path(args.source)
            if not source.exists():
                raise CliError(f"{source}: cannot be read: no such file")
            if preset.kind == "csv":
                options.update(columns=columns, header=True if args.header else (False if columns else None))
            summary = enrich_file(source, preset, annotator, output=Path(args.output) if args.output else None,
                                  force=args.force, **options)
    except EnrichError as exc:
        raise CliError(str(exc)) from None
    summary.write_text(sys.stderr)
    if args.summary:
        try:
            summary.write_json(args.summary)
        except OSError as exc:
            raise CliError(f"{args.summary}: cannot be written: {exc.strerror or exc}") from None
    return EXIT_OK
