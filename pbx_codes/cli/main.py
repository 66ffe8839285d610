"""Entry point of `pbx-codes`: builds the parser from each command module and maps errors to exit codes.

Every failure a user can cause (a bad argument, an unreadable or malformed file, a database that says no) ends as
one line on stderr and exit 2, mapped here once; nothing else prints a traceback. Log records go through the one
text policy's log-line profile (`pbx_codes.text.SafeLogFormatter`), so text from the network cannot forge a line.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

from pbx_codes import __version__
from pbx_codes.cli.common import EXIT_USAGE, CliError
from pbx_codes.compiled import build_description
from pbx_codes.errors import PbxCodesError
from pbx_codes.text import LOG_LINE, SafeLogFormatter, clean

log = logging.getLogger("pbx_codes.cli")

# Command modules register their subcommands. Each imports what it needs beyond the core when it runs, so every
# module always loads; one that does not is a broken installation, reported as such (never silently left out).
COMMAND_MODULES = (
    "pbx_codes.cli.catalog_commands",
    "pbx_codes.cli.replay_command",
    "pbx_codes.cli.serve_command",
    "pbx_codes.cli.bench_command",
    "pbx_codes.cli.console_commands",
    "pbx_codes.cli.enrich_command",
    "pbx_codes.cli.report_command",
    "pbx_codes.cli.backfill_command",
    "pbx_codes.cli.config_command",
)


#: The failures a user can cause: every kind of `PbxCodesError` (configuration, catalog, input, protocol, store...),
#: plus a bare ValueError from a library and an OSError for a file that cannot be read or written.
USER_ERRORS: tuple[type[BaseException], ...] = (PbxCodesError, ValueError, OSError)
MAX_MESSAGE_CHARS = 2000


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # exit 2 with one clear line, as the CLI promises
        sys.stderr.write(describe_failure(CliError(f"{self.prog}: error: {message} (see --help)")) + "\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pbx-codes", description="Why did this call fail? Carrier-accurate hangup reasons.")
    parser.add_argument("--version", action="version", version=f"pbx-codes {__version__} ({build_description()})")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (repeatable)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise CliError(f"the command module {name} cannot be loaded ({exc}): the installation is broken") \
                from None
        module.register(sub)
    return parser


def configure_logging(verbosity: int, stream: TextIO | None = None) -> logging.Handler:
    """The process's one log handler: stderr, one line per record, network text neutralised (see the module)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(SafeLogFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_pbx_codes", False)]:
        root.removeHandler(old)
    handler._pbx_codes = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.WARNING - 10 * min(verbosity, 2))
    return handler


def describe_failure(exc: BaseException, argv: Sequence[str] = ()) -> str:
    """One line for a failure: the error's own words (its type for an unexpected one), no control character, no
    database password even if a command quoted the URL it was given, bounded in length."""
    if isinstance(exc, PbxCodesError):  # its message is already the one line meant for the operator
        text = str(exc) or type(exc).__name__
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    elif isinstance(exc, USER_ERRORS):
        text = str(exc) or type(exc).__name__
    else:
        text = f"unexpected error: {type(exc).__name__}: {exc} (run with -v for details)"
    from pbx_codes.store.dsn import redact
    for arg in argv:
        if "://" in arg or "password" in arg.lower():
            text = redact(text, arg)
    text = clean(text, LOG_LINE)
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + "…"
    return text if text.startswith("pbx-codes") else f"pbx-codes: {text}"


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(args_list)
        configure_logging(args.verbose)
        return int(args.func(args) or 0)
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except KeyboardInterrupt:
        return 130
    except SystemExit:
        raise          # --help and --version end here with their output, an argument error with its one line
    except Exception as exc:
        if not isinstance(exc, USER_ERRORS):
            log.debug("unexpected error", exc_info=True)
        sys.stderr.write(describe_failure(exc, args_list) + "\n")
        return EXIT_USAGE


def _quiet_stdout() -> None:
    """After the reader of stdout went away (`| head`), flushing at exit must not raise again."""
    try:
        devnull = open(os.devnull, "w")  # noqa: SIM115 - lives until the process ends
        os.dup2(devnull.fileno(), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":
    raise SystemExit(main())
