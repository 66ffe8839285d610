"""`pbx-codes config check FILE`: read the file as `serve` would and print the configuration it would run with.

Every default is filled in, so what is printed is what runs; secrets are never printed (a store URL's password, a
webhook's path; `secret_env`/`secret_file` only name where a secret is, and it is not read). A key that is unknown
or of the wrong type ends as one line naming the file, section and key (exit 2); an older spelling of a key is
printed as a warning on stderr and the output shows its current name.
"""
from __future__ import annotations

import argparse
import sys

from pbx_codes.cli.common import EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("config", help="check a pbx-codes.toml and print the configuration it gives")
    actions = p.add_subparsers(dest="config_action", required=True)
    check = actions.add_parser("check", help="refuse unknown keys and wrong types; print the effective "
                                             "configuration with secrets redacted")
    check.add_argument("file", metavar="FILE", help="pbx-codes.toml to check")
    check.set_defaults(func=cmd_config_check)


def cmd_config_check(args: argparse.Namespace) -> int:
    from pbx_codes.config import effective_toml, load_config
    from pbx_codes.console.settings import parse_listen
    from pbx_codes.quality.classes import load_table
    from pbx_codes.sinks.alerts import parse_rules
    from pbx_codes.store.store import parse_store_settings

    config = load_config(args.file)
    # What the parts check beyond keys and types, short of reading secrets: the same refusals `serve` would give.
    parse_rules(config.alerts)
    load_table(config.quality)
    if config.store is not None:
        parse_store_settings(config.store)
    if config.console is not None:
        parse_listen(config.console.listen)
    for warning in config.warnings:
        sys.stderr.write(f"pbx-codes: warning: {warning}\n")
    sys.stdout.write(effective_toml(config))
    return EXIT_OK
