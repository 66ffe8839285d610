"""`pbx-codes serve`: every configured part in one asyncio process, sharing one resolver and one annotation bus.

Each part is started only when its section is in the configuration (or given on the command line), so the same
program is an Asterisk listener, a FreeSWITCH listener, both, or only a console over an existing store.

One fault never stops the other parts: a PBX that refuses the login, a database or a webhook that is down is
retried by its part, which keeps its state in `App.health` (logged once per change, shown in /metrics and the
console). `serve` itself ends with an error only for what start-up finds wrong (a bad section, a missing secret,
a port in use); a part that crashes later is logged and the others keep running.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from pbx_codes import status as states
from pbx_codes.config import Config
from pbx_codes.errors import PbxCodesError
from pbx_codes.resolve import Resolver
from pbx_codes.runtime import heap
from pbx_codes.sinks.bus import AnnotationBus
from pbx_codes.status import Health, PartStatus

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
    health: Health = field(default_factory=Health)
    jobs: list[Coroutine[Any, Any, Any]] = field(default_factory=list)
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
    from pbx_codes.runtime import components

    await components.start_sinks(app, store_url, console)
    cfg = app.config
    on_client = components.part_watcher(app)
    if cfg.asterisk is not None:
        from pbx_codes.runtime.ami_listener import run_asterisk
        app.jobs.append(run_asterisk(cfg.asterisk, app.resolver, app.bus, language=cfg.language,
                                     on_client=on_client))
    if cfg.freeswitch is not None:
        from pbx_codes.runtime.esl_listener import run_freeswitch
        app.jobs.append(run_freeswitch(cfg.freeswitch, app.resolver, app.bus, on_client=on_client))
    app.jobs.append(_log_annotations(app))


def _part_ended(app: App, task: asyncio.Future[Any]) -> None:
    """A part's job ended before `stop`. What start-up finds wrong (a section, a secret, a port: ValueError and
    OSError; every PbxCodesError) ends serve with one line; anything else is a crash of that part alone: logged,
    shown, not fatal."""
    exc = task.exception()
    if exc is None:
        return  # a part with nothing to run (e.g. [asterisk] with ami and agi both off)
    if isinstance(exc, (PbxCodesError, ValueError, OSError)):
        raise exc
    log.error("a part of serve crashed; the others keep running", exc_info=exc)
    crashed = PartStatus(f"part {getattr(task, 'get_name', lambda: '?')()}", logger=log)
    crashed.set(states.DOWN, f"crashed: {type(exc).__name__}: {exc}")
    app.health.add(crashed)


async def serve(config: Config, resolver: Resolver, *, store_url: str | None = None,
                console: str | None = None, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set or SIGINT/SIGTERM arrives; close everything that was started."""
    app = App(config, resolver, bus=AnnotationBus(instance=config.instance))
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
        frozen = heap.settle()  # the catalogs and the parts live as long as the process: out of the GC's walks
        log.debug("start-up heap frozen: %d objects", frozen)
        tasks = [asyncio.ensure_future(job) for job in app.jobs]
        for task, job in zip(tasks, app.jobs):
            task.set_name(getattr(job, "__qualname__", "part"))  # type: ignore[attr-defined]
        running = set(tasks)
        while running:
            done, _ = await asyncio.wait([*running, waiter], return_when=asyncio.FIRST_COMPLETED)
            if waiter in done:
                break
            for task in done:
                running.discard(task)
                _part_ended(app, task)
        else:
            await waiter
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
