"""Running the console inside `pbx-codes serve`: bind, serve until cancelled, close the streams cleanly."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from pbx_codes.console.app import create_app
from pbx_codes.console.ports import AlertSource, ConsoleStore, MetricsRenderer
from pbx_codes.console.settings import ConsoleSettings, parse_console_settings
from pbx_codes.sinks.bus import AnnotationBus
from pbx_codes.status import Health

log = logging.getLogger("pbx_codes.console")


async def start_console(settings: ConsoleSettings, bus: AnnotationBus, store: ConsoleStore | None = None,
                        metrics: MetricsRenderer | None = None, alerts: AlertSource | None = None, *,
                        health: Health | None = None) -> tuple[web.AppRunner, int]:
    """Start serving and return the runner (for `cleanup()`) and the port actually bound (port 0 picks one)."""
    runner = web.AppRunner(create_app(bus, store, metrics, alerts, settings, health), access_log=None,
                           shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    port = settings.port
    server = getattr(site, "_server", None)
    if server is not None and server.sockets:
        port = server.sockets[0].getsockname()[1]
    log.info("console on http://%s:%d/%s", settings.host if ":" not in settings.host else f"[{settings.host}]",
             port, "" if settings.token is None else " (access token required)")
    return runner, port


async def run_console(config_section: Mapping[str, Any] | None, bus: AnnotationBus,
                      store: ConsoleStore | None = None, metrics: MetricsRenderer | None = None,
                      alerts: AlertSource | None = None, language: str = "en", *,
                      listen: str | None = None) -> None:
    """Serve the console until cancelled. `listen` (HOST:PORT, `serve --console`) overrides the section.

    Raises ConfigError (a ValueError) at once for a bad section or a missing token off loopback, OSError when the
    address cannot be bound.
    """
    settings = parse_console_settings(config_section, language=language, listen=listen)
    runner, _ = await start_console(settings, bus, store, metrics, alerts)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


__all__ = ["run_console", "start_console"]
