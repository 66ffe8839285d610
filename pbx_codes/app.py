"""`pbx-codes serve`: every configured part in one asyncio process, sharing one resolver and one annotation bus.

Each part is started only when its section is in the configuration (or given on the command line), so the same
program is an Asterisk listener, a FreeSWITCH listener, both, or only a console over an existing store.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from pbx_codes.config import Config
from pbx_codes.resolve import Resolver
from pbx_codes.sinks.bus import AnnotationBus

log = logging.getLogger("pbx_codes.serve")


@dataclass(slots=True)
class App:
    """The running program's shared parts, handed to each component explicitly."""

    config: Config
    resolver: Resolver
    bus: AnnotationBus = field(default_factory=AnnotationBus)
    store: Any = None
    metrics: Any = None
    alerts: Any = None
    jobs: list[Awaitable[Any]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)


async def _log_annotations(app: App) -> None:
    """One log line per annotated hangup: the operator's first view, with nothing else configured."""
    sub = app.bus.subscribe("log")
    while True:
        ann = await sub.queue.get()
        obs = ann.observation
        log.info("%s %s leg %s: %s %s -> %s (retry %s) [%s] %s", obs.pbx, obs.trunk or "-", obs.leg_id, ann.code,
                 ann.phrase or "", ann.category.value, ann.retry.value, ann.catalog, ann.text(app.config.language))


async def build(app: App, store_url: str | None, console: str | None) -> None:
    """Start the sinks (store, metrics, alerts, console) before the listeners, so no annotation is missed."""
    from pbx_codes import components

    await components.start_sinks(app, store_url, console)
    cfg = app.config
    on_client = app.metrics.watch_listener if app.metrics is not None else None
    if cfg.asterisk is not None:
        from pbx_codes.adapters.ami_listener import run_asterisk
        app.jobs.append(run_asterisk(cfg.asterisk, app.resolver, app.bus, language=cfg.language,
                                     default_catalog=cfg.default_catalog, on_client=on_client))
    if cfg.freeswitch is not None:
        from pbx_codes.adapters.esl_listener import run_freeswitch
        app.jobs.append(run_freeswitch(cfg.freeswitch, app.resolver, app.bus, on_client=on_client))
    app.jobs.append(_log_annotations(app))


async def serve(config: Config, resolver: Resolver, *, store_url: str | None = None,
                console: str | None = None, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set or SIGINT/SIGTERM arrives; close everything that was started."""
    app = App(config, resolver)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    tasks: list[asyncio.Future[Any]] = []
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await build(app, store_url, console)  # inside the try: a part that fails to start closes those before it
        tasks = [asyncio.ensure_future(job) for job in app.jobs]
        done, _ = await asyncio.wait([*tasks, waiter], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not waiter and task.exception() is not None:
                raise task.exception()  # a part died: say so instead of running half a program
    finally:
        for job in app.jobs:  # coroutines built but never started (a later part failed): close them quietly
            if not any(getattr(t, "get_coro", lambda: None)() is job for t in tasks):
                job.close()
        for task in [*tasks, waiter]:
            task.cancel()
        await asyncio.gather(*tasks, waiter, return_exceptions=True)
        for close in reversed(app.closers):
            with contextlib.suppress(Exception):
                await close()
        for sig in handled:
            loop.remove_signal_handler(sig)
