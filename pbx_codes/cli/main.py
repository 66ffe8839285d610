"""Entry point of `pbx-codes`: builds the parser from each command module and maps errors to exit codes."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from pbx_codes import __version__
from pbx_codes.cli.common import EXIT_USAGE, CliError

# Command modules register their subcommands; a module whose optional dependencies are missing is skipped.
COMMAND_MODULES = (
    "pbx_codes.cli.catalog_commands",
    "pbx_codes.cli.replay_command",
    "pbx_codes.cli.serve_command",
    "pbx_codes.cli.bench_command",
    "pbx_codes.cli.console_commands",
    "pbx_codes.cli.enrich_command",
    "pbx_codes.cli.report_command",
    "pbx_codes.cli.backfill_command",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # exit 2 with one clear line, as the CLI promises
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pbx-codes", description="Why did this call fail? Carrier-accurate hangup reasons.")
    parser.add_argument("--version", action="version", version=f"pbx-codes {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (repeatable)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        sys.stderr.write(f"pbx-codes: {exc}\n")
        return EXIT_USAGE
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
