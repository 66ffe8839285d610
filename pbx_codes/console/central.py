"""`pbx-codes console --store URL`: the console alone (no PBX listener) over a store a fleet of agents shares.

The live feed comes from the store (`StoreFeed`: PostgreSQL notifications, a poll behind them) onto this process's
own bus, so the page, /metrics (with each agent's `pbx_instance`), the alerts and the trunk quality view work over
every agent at once, or one agent through `?instance=`.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from pbx_codes import status as states
from pbx_codes.config import Config
from pbx_codes.console.server import start_console
from pbx_codes.console.settings import parse_console_settings
from pbx_codes.console.store_feed import StoreFeed
from pbx_codes.sinks.bus import AnnotationBus
from pbx_codes.status import Health, PartStatus

log = logging.getLogger("pbx_codes.console")


def feed_status(feed: StoreFeed, where: str) -> Any:
    """The feed's state for the page's header and /metrics: live by notifications, or by the poll alone."""
    def read() -> PartStatus:
        name = f"fleet feed {where}"
        if feed.store.dialect.name != "postgresql":
            return PartStatus(name, state=states.UP, reason=f"polled every {feed.poll_interval:g} s")
        if feed.stats.listening:
            return PartStatus(name, state=states.UP,
                              reason=f"{feed.stats.published} rows live in {feed.stats.reads} reads")
        return PartStatus(name, state=states.DOWN, reason="not listening; the poll carries the feed")
    return read


async def run_central(config: Config, store_url: str, *, listen: str | None = None, poll_interval: float = 2.0,
                      stop: asyncio.Event | None = None, started: Any = None) -> None:
    """Serve the central console until `stop` is set (or cancelled). `started(port)` is called once it listens."""
    from pbx_codes.quality.classes import load_table
    from pbx_codes.sinks.metrics import run_metrics
    from pbx_codes.store import open_store

    settings = parse_console_settings(config.console, language=config.language, listen=listen)
    quality = load_table(config.quality)
    store = await open_store(store_url, config.store)
    bus = AnnotationBus()
    closers: list[Any] = [store.close]
    health = Health()
    feed = StoreFeed(store, bus, poll_interval=poll_interval)
    health.add(feed_status(feed, store.backend.describe()))
    tasks: list[asyncio.Task[Any]] = []
    try:
        metrics = await run_metrics(bus, quality=quality)
        closers.append(metrics.close)
        metrics.watch_health(health)
        alerts = None
        if config.alerts:
            from pbx_codes.sinks.alerts import run_alerts
            alerts = await run_alerts(list(config.alerts), bus, quality=quality)
            closers.append(alerts.close)
        runner, port = await start_console(settings, bus, store, metrics, alerts, health=health)
        closers.append(runner.cleanup)
        tasks.append(asyncio.create_task(feed.run(), name="pbx-codes-fleet-feed"))
        if started is not None:
            started(port)
        waiter = asyncio.ensure_future((stop or asyncio.Event()).wait())
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        for task in done:
            if task is not waiter and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for close in reversed(closers):
            with contextlib.suppress(Exception):
                await close()


__all__ = ["feed_status", "run_central"]
