"""The operator console: a live feed of annotated hangups, counts, a failure-rate chart, alerts and unknown codes.

`create_app` builds the aiohttp application; `run_console` serves it inside `pbx-codes serve`.
"""
from __future__ import annotations

from pbx_codes.console.app import create_app
from pbx_codes.console.server import run_console, start_console
from pbx_codes.console.settings import ConsoleSettings, parse_console_settings

__all__ = ["ConsoleSettings", "create_app", "parse_console_settings", "run_console", "start_console"]
