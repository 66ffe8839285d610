"""`pbx-codes serve`: run the configured listeners, write-back servers and console in one process."""
from __future__ import annotations

import argparse
import asyncio
import logging

from pbx_codes.cli.common import EXIT_OK, CliError, add_catalog_options, loop_factory, resolver_from
from pbx_codes.errors import PbxCodesError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the listeners, FastAGI/hook servers and console from pbx-codes.toml")
    add_catalog_options(p)
    p.add_argument("--store", metavar="URL", help="annotation store (sqlite:///path or postgresql://…), overrides TOML")
    p.add_argument("--console", metavar="HOST:PORT", help="console address, overrides TOML (default 127.0.0.1:8088)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from pbx_codes.runtime.app import serve

    resolver, config = resolver_from(args)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger("pbx_codes").setLevel(logging.INFO)
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(serve(config, resolver, store_url=args.store, console=args.console))
    except PbxCodesError:
        raise          # already one line for the operator: cli.main prints it, exit 2
    except (OSError, ValueError) as exc:
        raise CliError(str(exc)) from None
    return EXIT_OK
