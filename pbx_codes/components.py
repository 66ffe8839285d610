"""Starting the sinks for `serve`: the store, metrics, alerts and the console, each only when configured.

Sinks start before the listeners so that the first annotation already has somewhere to go.
"""
from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pbx_codes.app import App

log = logging.getLogger("pbx_codes.serve")


def _available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


async def start_sinks(app: "App", store_url: str | None, console: str | None) -> None:
    """Store, metrics and alerts when their parts are installed and configured, then the console."""
    cfg = app.config
    if _available("pbx_codes.store") and (store_url or cfg.store):
        from pbx_codes.store import run_store
        app.store = await run_store(dict(cfg.store or {}), app.bus, url=store_url)
        app.closers.append(app.store.close)
    from pbx_codes.quality.classes import load_table
    from pbx_codes.sinks.metrics import run_metrics
    quality = load_table(cfg.quality)  # a wrong [quality] table stops serve with the table and key named
    app.metrics = await run_metrics(app.bus, quality=quality)
    app.closers.append(app.metrics.close)
    if cfg.alerts:
        from pbx_codes.sinks.alerts import run_alerts
        app.alerts = await run_alerts(list(cfg.alerts), app.bus, quality=quality)
        app.closers.append(app.alerts.close)
    if cfg.console is not None or console is not None or app.store is not None:
        from pbx_codes.console.server import start_console
        from pbx_codes.console.settings import parse_console_settings

        settings = parse_console_settings(cfg.console, language=cfg.language, listen=console)
        runner, _ = await start_console(settings, app.bus, app.store, app.metrics, app.alerts)
        app.closers.append(runner.cleanup)
