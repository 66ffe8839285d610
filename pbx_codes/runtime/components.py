"""Starting the sinks for `serve`: the store, metrics, alerts and the console, each only when configured.

Sinks start before the listeners so that the first annotation already has somewhere to go.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pbx_codes import status as states
from pbx_codes.adapters.reconnect import Backoff, BackoffPolicy, Ending
from pbx_codes.status import PartStatus, describe_error

if TYPE_CHECKING:
    from pbx_codes.runtime.app import App

log = logging.getLogger("pbx_codes.serve")


async def start_sinks(app: App, store_url: str | None, console: str | None) -> None:
    """Store, metrics and alerts when configured, then the console."""
    cfg = app.config
    if store_url or cfg.store:
        from pbx_codes.store import run_store
        app.store = await run_store(cfg.store, app.bus, url=store_url)
        app.closers.append(app.store.close)
        reach = StoreReach()
        app.health.add(store_status(app.store, reach))
        app.jobs.append(reach_store(app.store, reach))
    from pbx_codes.quality.classes import load_table
    from pbx_codes.sinks.metrics import run_metrics
    quality = load_table(cfg.quality)  # a wrong [quality] table stops serve with the table and key named
    app.metrics = await run_metrics(app.bus, quality=quality)
    app.closers.append(app.metrics.close)
    app.metrics.watch_health(app.health)
    if cfg.alerts:
        from pbx_codes.sinks.alerts import run_alerts
        app.alerts = await run_alerts(list(cfg.alerts), app.bus, quality=quality)
        app.closers.append(app.alerts.close)
        webhook = getattr(app.alerts, "webhook_status", None)
        if webhook is not None and app.alerts.webhooks():
            app.health.add(webhook)
    if cfg.console is not None or console is not None or app.store is not None:
        from pbx_codes.console.server import start_console
        from pbx_codes.console.settings import parse_console_settings

        settings = parse_console_settings(cfg.console, language=cfg.language, listen=console)
        runner, _ = await start_console(settings, app.bus, app.store, app.metrics, app.alerts, health=app.health)
        app.closers.append(runner.cleanup)


@dataclass(slots=True)
class StoreReach:
    """Whether the store's database has answered since start: the writer only finds out when it has rows to write."""

    reached: bool = False
    reason: str = "not reached yet"


async def reach_store(store: Any, reach: StoreReach, policy: BackoffPolicy = BackoffPolicy(maximum=5.0)) -> None:
    """Reach (and migrate) the database once, retrying with backoff, so its state is right before any row comes."""
    backoff = Backoff(policy)
    while True:
        try:
            await store.backend.ensure()
        except Exception as exc:
            reason = f"not reached since start: {describe_error(exc)}; retried"
            if reason != reach.reason and not store.backend.is_transient(exc):
                log.error("store %s: %s", store.backend.describe(), reason)
            reach.reason = reason
            await asyncio.sleep(backoff.after(Ending.FAILED))
            continue
        reach.reached = True
        return


def store_status(store: Any, reach: StoreReach | None = None) -> Callable[[], PartStatus]:
    """The store's state for /metrics and the console, read from its writer (which logs its own outages)."""
    def read() -> PartStatus:
        stats = store.stats
        pending = store.writer.pending
        name = f"store {store.backend.describe()}"
        if not stats.available:
            return PartStatus(name, state=states.DOWN, since=stats.outage_since or 0.0,
                              reason=f"database unavailable; {pending} rows kept in memory or the journal, retried",
                              failures=stats.failures)
        if reach is not None and not reach.reached and not stats.written:
            return PartStatus(name, state=states.DOWN, reason=reach.reason, failures=stats.failures)
        return PartStatus(name, state=states.UP, reason=f"{pending} rows pending", failures=stats.failures)
    return read


def part_watcher(app: App) -> Callable[[str, Any], None]:
    """What the listeners call with each part they start: its state goes to `app.health`, its counters to /metrics."""
    def watch(name: str, part: Any) -> None:
        status = getattr(part, "status", None)
        if isinstance(status, PartStatus):
            app.health.add(status)
        elif hasattr(part, "stats") and hasattr(part, "port"):  # the FastAGI server: up while it listens
            listening = PartStatus(f"FastAGI {getattr(part, 'host', '')}:{part.port}")
            listening.set(states.UP, "listening")
            app.health.add(listening)
        if app.metrics is not None:
            app.metrics.watch_listener(name, part)
    return watch
