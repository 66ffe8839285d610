"""`lookup`, `catalogs`, `export`, `validate`: the catalog side of the CLI."""
from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from pbx_codes.catalog import CatalogError, validate_file
from pbx_codes.catalog.sql_export import SqlExportError, sql_script, view_of
from pbx_codes.cli.common import (
    EXIT_NO_MATCH,
    EXIT_OK,
    CliError,
    add_catalog_options,
    add_lang_option,
    catalogs_from,
    print_json,
    resolver_from,
)
from pbx_codes.model import LANGS, Annotation
from pbx_codes.text import csv_cell


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("lookup", help="explain a code (and optional reason phrase)")
    p.add_argument("code", help="SIP code, Q.850 cause, provider code (e.g. 2219, 200/486, 030) or message")
    p.add_argument("phrase", nargs="?", help="the reason phrase the carrier sent")
    p.add_argument("--catalog", help="catalog id (default: the configured default, sip)")
    p.add_argument("--method", help="API method, for per-method catalogs (voipnow)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_lang_option(p)
    add_catalog_options(p)
    p.set_defaults(func=cmd_lookup)

    p = sub.add_parser("catalogs", help="list the loaded catalogs and their entry counts")
    p.add_argument("--json", action="store_true")
    add_catalog_options(p)
    p.set_defaults(func=cmd_catalogs)

    p = sub.add_parser("export", help="print a catalog as JSON or CSV, or catalogs as a PostgreSQL script")
    p.add_argument("catalog", nargs="*", help="catalog id (json, csv: exactly one; sql: any, none for every catalog)")
    p.add_argument("--format", choices=("json", "csv", "sql"), default="json")
    p.add_argument("--schema", default="public",
                   help="sql: PostgreSQL schema of the tables and of pbx_codes_resolve() (default public)")
    add_catalog_options(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("validate", help="check a user catalog file")
    p.add_argument("path")
    add_catalog_options(p)
    p.set_defaults(func=cmd_validate)


def lookup_dict(ann: Annotation) -> dict[str, Any]:
    """The lookup's JSON: what matched and what it means, without call ids."""
    d = ann.to_dict()
    keys = ("catalog", "code", "phrase", "matched", "exact", "match_kind", "category", "retry", "fault", "sip",
            "q850", "texts", "original_lang")
    out = {k: d[k] for k in keys}
    out["method"] = ann.observation.method
    return out


def cmd_lookup(args: argparse.Namespace) -> int:
    resolver, config = resolver_from(args)
    if args.catalog and args.catalog not in resolver.catalogs:
        raise CliError(f"unknown catalog {args.catalog!r}; known: {', '.join(resolver.catalogs.ids())}")
    ann = resolver.lookup(args.code, args.phrase, catalog=args.catalog, method=args.method)
    if args.json:
        print_json(lookup_dict(ann))
    else:
        lang = args.lang or config.language
        how = {"phrase": "by its phrase", "code": "exactly", "class": f"by class {ann.matched}",
               "q850": f"by Q.850 {ann.matched}", "none": "by nothing"}[ann.match_kind]
        extra = f" (sip {ann.sip}" + (f", q850 {ann.q850}" if ann.q850 is not None else "") + ")" if ann.sip else ""
        print(f"[{ann.catalog}] {args.code}{' ' + args.phrase if args.phrase else ''}: {ann.category.value}, "
              f"retry {ann.retry.value}, matched {how}{extra}")
        print(f"  {ann.text(lang)}")
    return EXIT_OK if ann.match_kind != "none" else EXIT_NO_MATCH


def cmd_catalogs(args: argparse.Namespace) -> int:
    catalogs = catalogs_from(args)
    rows = [{"id": c.id, "entries": len(c.entries), "code_space": c.code_space, "class_scheme": c.class_scheme,
             "original_lang": c.original_lang, "fallback": c.fallback, "title": c.title, "path": c.path}
            for c in catalogs]
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            print(f"{r['id']:<10} {r['entries']:>5} entries  {r['code_space']:<6} {r['original_lang']}  {r['title']}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    if args.format == "sql":
        return _export_sql(args)
    if len(args.catalog) != 1:
        raise CliError(f"export --format {args.format} takes exactly one catalog id")
    catalogs = catalogs_from(args)
    catalog = catalogs.get(args.catalog[0])
    if catalog is None:
        raise CliError(f"unknown catalog {args.catalog[0]!r}; known: {', '.join(catalogs.ids())}")
    entries = [e.to_dict() for e in catalog.entries]
    if args.format == "json":
        head = {"id": catalog.id, "title": catalog.title, "source": catalog.source,
                "original_lang": catalog.original_lang, "code_space": catalog.code_space,
                "class_scheme": catalog.class_scheme, "fallback": catalog.fallback, "classes": dict(catalog.classes)}
        sys.stdout.write(json.dumps({**head, "entry": entries}, ensure_ascii=False, indent=2) + "\n")
    else:
        fields = ["code", "phrase", "match", "methods", "category", "retry", "fault", "sip", "q850", "deprecated",
                  "original", *(f"text_{lang}" for lang in LANGS)]
        writer = csv.DictWriter(sys.stdout, fields, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for e in entries:
            row = {**e, **{f"text_{lang}": e["text"][lang] for lang in LANGS}}
            row["methods"] = " ".join(e.get("methods", []))
            writer.writerow({name: csv_cell(value) for name, value in row.items()})
    return EXIT_OK


def _export_sql(args: argparse.Namespace) -> int:
    resolver, _ = resolver_from(args)
    try:
        script = sql_script(view_of(resolver), args.catalog, schema=args.schema)
    except SqlExportError as exc:
        raise CliError(str(exc)) from None
    sys.stdout.write(script)
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    catalogs = catalogs_from(args)
    try:
        catalog = validate_file(args.path, against=catalogs)
    except CatalogError as exc:
        raise CliError(str(exc)) from None
    print(f"{args.path}: ok: catalog {catalog.id!r}, {len(catalog.entries)} entries")
    return EXIT_OK
