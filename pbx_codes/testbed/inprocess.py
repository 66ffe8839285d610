"""The pbx-codes side of a bench call: the real FastAGI server (and optionally the AMI listener) in this process.

The bench's Asterisk calls ``AGI(agi://<bench.agi_address>/annotate, ...)`` from its hangup handler; something must
listen there for the CDR to carry the annotation. Tests, ``pbx-codes bench call`` and the rate benchmark are
synchronous programs driving sipp, so the server runs on its own event loop in a background thread, built from the
same parts ``pbx-codes serve`` wires (`make_routes`, `AgiServer`, `AmiListener`, `AnnotationBus`).
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self, TypeVar

from pbx_codes.adapters.agi_server import AgiServer, AgiSession, Handler
from pbx_codes.catalog import load_catalogs
from pbx_codes.model import Annotation
from pbx_codes.resolve import Resolver
from pbx_codes.sinks.bus import AnnotationBus
from pbx_codes.timeouts import within
from pbx_codes.writeback.agi_annotate import WritebackSettings, make_routes, publishes

if TYPE_CHECKING:
    from pbx_codes.runtime.ami_listener import AmiListener
    from pbx_codes.testbed.asterisk import AsteriskBench

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AgiTiming:
    """One FastAGI session as the server lived it: wall-clock times, so they compare with AMI event timestamps."""

    script: str
    uniqueid: str | None
    channel: str | None
    started: float  # the request was complete
    finished: float  # the last command was answered (the CDR holds every field)
    ok: bool

    @property
    def duration(self) -> float:
        return self.finished - self.started


@dataclass(slots=True)
class _Records:
    """What the background loop appends and the driving thread reads (list appends are atomic)."""

    timings: list[AgiTiming] = field(default_factory=list)
    agi_annotations: list[Annotation] = field(default_factory=list)
    bus_annotations: list[Annotation] = field(default_factory=list)


class BackgroundLoop:
    """An asyncio event loop in a daemon thread; `run` executes a coroutine there and waits for its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="pbx-codes-bench-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run a plain function on the loop's thread (for objects that are not thread-safe)."""
        async def wrapper() -> T:
            return fn()
        return self.run(wrapper(), timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


class LoopHosted:
    """Parts that start together on their own `BackgroundLoop` and stop together.

    Subclasses write the coroutines `_start` and `_stop` (both run on that loop) and get `start`, `stop` and the
    with-statement; a `start` that fails stops whatever it had started before it re-raises.
    """

    def __init__(self) -> None:
        self._loop: BackgroundLoop | None = None

    async def _start(self) -> None:
        raise NotImplementedError

    async def _stop(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        self._loop = BackgroundLoop()
        try:
            self._loop.run(self._start())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            loop.run(self._stop())
        finally:
            loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def bench_ami_listener(bench: AsteriskBench, secret: str, resolver: Resolver, bus: Any, *, language: str,
                       ping_interval: float, ping_timeout: float, backoff_max: float) -> AmiListener:
    """An AMI listener logging in to the bench's manager account, built from a section as ``serve`` builds it.

    The ping and back-off times are the caller's: a fault run wants a cut connection noticed sooner.
    """
    from pbx_codes.runtime.ami_listener import AmiListener, ami_settings

    section = {"host": "127.0.0.1", "port": bench.ami_port, "username": bench.ami_user,
               # manager_pbx_codes.conf filters events itself and grants no "system" write for Filter.
               "server_filters": False, "ping_interval": ping_interval, "ping_timeout": ping_timeout,
               "backoff_max": backoff_max}
    return AmiListener(ami_settings(section), secret, resolver, bus, language=language)


def abort_ami_socket(listener: AmiListener) -> None:
    """Close the listener's AMI socket under it, as a network fault would; call it on the listener's loop."""
    listener.client.cut()


def _timed(script: str, handler: Handler, records: _Records) -> Handler:
    async def run(session: AgiSession) -> None:
        started = time.time()
        ok = False
        try:
            await handler(session)
            ok = True
        finally:
            records.timings.append(AgiTiming(script, session.request.uniqueid, session.request.channel, started,
                                             time.time(), ok))
    return run


class PbxCodesInProcess(LoopHosted):
    """The FastAGI server on the bench's AGI port and, with ``ami=True``, the AMI listener on its AMI port.

    ``ami_secret_env`` names the environment variable the listener reads its secret from, as ``serve`` does.
    """

    def __init__(self, bench: AsteriskBench, *, language: str = "uk", catalog_dirs: Iterable[str] = (),
                 bindings: dict[str, str] | None = None, ami: bool = False,
                 ami_secret_env: str = "PBX_CODES_AMI_SECRET", agi_timeout: float = 10.0,
                 store_url: str | None = None) -> None:
        super().__init__()
        self.bench = bench
        self.language = language
        self.resolver = Resolver(load_catalogs(list(catalog_dirs)), bindings=dict(bindings or {}))
        self.bus = AnnotationBus()
        self.records = _Records()
        self.ami_enabled = ami
        self.ami_secret_env = ami_secret_env
        self.agi_timeout = agi_timeout
        self.agi: AgiServer | None = None
        self.listener: AmiListener | None = None
        self.store_url = store_url
        self.store: Any = None
        self._tasks: list[asyncio.Future[Any]] = []

    # -- lifecycle (`start`, `stop`, with-statement: `LoopHosted`) ---------------------------------------------------
    async def _start(self) -> None:
        host, port = self.bench.agi_address.rsplit(":", 1)
        records = self.records
        publish_all = not self.ami_enabled

        def on_agi(annotation: Annotation) -> None:
            # Every FastAGI annotation is recorded; the bus gets what `serve` would publish from this path.
            records.agi_annotations.append(annotation)
            if publishes(publish_all, annotation.observation):
                self.bus.publish(annotation)

        routes = make_routes(self.resolver, WritebackSettings(self.language), None, on_agi)
        sub = self.bus.subscribe("bench")
        self._tasks.append(asyncio.ensure_future(self._drain(sub.queue)))
        if self.store_url is not None:
            from pbx_codes.store import run_store

            self.store = await run_store(None, self.bus, url=self.store_url)
        self.agi = AgiServer({name: _timed(name, h, records) for name, h in routes.items()}, host=host,
                             port=int(port), timeout=self.agi_timeout)
        await self.agi.start()
        if self.ami_enabled:
            from pbx_codes.adapters.secrets import read_secret

            self.listener = bench_ami_listener(self.bench, read_secret(self.ami_secret_env, None), self.resolver,
                                               self.bus, language=self.language, ping_interval=5.0,
                                               ping_timeout=2.0, backoff_max=1.0)
            self._tasks.append(asyncio.ensure_future(self.listener.run()))
            await within(self.listener.client.connected.wait(), 10)

    async def _drain(self, queue: asyncio.Queue[Annotation]) -> None:
        while True:
            self.records.bus_annotations.append(await queue.get())

    async def _stop(self) -> None:
        if self.listener is not None:
            await self.listener.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.agi is not None:
            await self.agi.close()
        if self.store is not None:
            await self.store.close()

    # -- what tests and benchmarks look at ----------------------------------------------------------------------
    @property
    def timings(self) -> list[AgiTiming]:
        return list(self.records.timings)

    @property
    def agi_annotations(self) -> list[Annotation]:
        return list(self.records.agi_annotations)

    @property
    def bus_annotations(self) -> list[Annotation]:
        return list(self.records.bus_annotations)

    @property
    def ami_connections(self) -> int:
        return self.listener.client.connections if self.listener is not None else 0

    def drop_ami_connection(self) -> None:
        """Close the listener's AMI socket under it, as a network fault would."""
        if self._loop is None or self.listener is None:
            raise RuntimeError("the AMI listener is not running")
        listener = self.listener
        self._loop.call(lambda: abort_ami_socket(listener))

    def store_rows(self, linkedid: str) -> list[dict[str, Any]]:
        """The store's rows of one call (its legs and attempts), once everything published so far is written."""
        if self._loop is None or self.store is None:
            raise RuntimeError("no store is running")
        store = self.store

        async def rows() -> list[dict[str, Any]]:
            await store.flush(5.0)
            legs: list[dict[str, Any]] = await store.call(linkedid)
            return legs
        return self._loop.run(rows())

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0, step: float = 0.02) -> bool:
        """Poll `predicate` until it holds or `timeout` passes; returns its last value (no timing assertions)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(step)
        return predicate()


__all__ = ["AgiTiming", "BackgroundLoop", "LoopHosted", "PbxCodesInProcess", "abort_ami_socket", "bench_ami_listener"]
