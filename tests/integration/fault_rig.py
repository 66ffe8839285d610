"""pbx-codes beside the real Asterisk bench, with every part that can fail under separate control.

`PbxCodesInProcess` starts and stops its parts together; a fault run needs to take one away while the others keep
working: stop the FastAGI server and start it again on the same port, cut the AMI listener's socket, let the store
lose its database. The parts are the ones ``pbx-codes serve`` wires (`make_routes`, `AgiServer`, `AmiListener`,
`open_store`), on one event loop in a background thread, so the synchronous sipp driver can run beside them.

Where annotations go: the FastAGI server writes the CDR and publishes each annotation on the bus, which the store
(when there is one) drains, so one annotated CDR record is one store row; the AMI listener's annotations are kept
apart (`ami_published`), as they describe the same calls a second time.
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pbx_codes.adapters.agi_server import AgiServer, Handler
from pbx_codes.catalog import load_catalogs
from pbx_codes.model import Annotation
from pbx_codes.resolve import Resolver
from pbx_codes.runtime.ami_listener import AmiListener
from pbx_codes.sinks.bus import AnnotationBus
from pbx_codes.store.store import Store, open_store
from pbx_codes.testbed.asterisk import AsteriskBench
from pbx_codes.testbed.inprocess import LoopHosted, abort_ami_socket, bench_ami_listener
from pbx_codes.writeback.agi_annotate import WritebackSettings, make_routes


class _Collector:
    """A bus stand-in for the AMI listener: keeps what it publishes, in order."""

    def __init__(self) -> None:
        self.items: list[Annotation] = []

    def publish(self, annotation: Annotation) -> None:
        self.items.append(annotation)


class FaultRig(LoopHosted):
    """The FastAGI server (always), the AMI listener (``ami=True``) and the store (``store_url``) for one bench."""

    def __init__(self, bench: AsteriskBench, *, catalog_dirs: Iterable[str] = (), language: str = "en",
                 ami: bool = False, store_url: str | None = None, store_journal: Path | None = None) -> None:
        super().__init__()
        self.bench = bench
        self.language = language
        self.resolver = Resolver(load_catalogs(list(catalog_dirs)))
        self.bus = AnnotationBus()
        self.agi_annotations: list[Annotation] = []
        self._ami_collector = _Collector()
        self.ami_enabled = ami
        self.store_url = store_url
        self.store_journal = store_journal
        self.agi: AgiServer | None = None
        self.agi_starts = 0
        self.listener: AmiListener | None = None
        self.store: Store | None = None
        self.store_close_hung = False
        self._routes: dict[str, Handler] = {}
        self._ami_task: asyncio.Future[Any] | None = None

    # -- lifecycle (`start`, `stop`, with-statement: `LoopHosted`) ---------------------------------------------------

    async def _start(self) -> None:
        def on_annotation(annotation: Annotation) -> None:
            self.agi_annotations.append(annotation)
            self.bus.publish(annotation)

        self._routes = make_routes(self.resolver, WritebackSettings(self.language), None, on_annotation)
        if self.store_url is not None:
            section: dict[str, Any] = {"flush_ms": 100, "retry_max": 0.5, "retention_days": None}
            if self.store_journal is not None:
                section["journal"] = str(self.store_journal)
            self.store = await open_store(self.store_url, section)
            self.store.start(self.bus)
        await self._start_agi()
        if self.ami_enabled:
            self.listener = bench_ami_listener(self.bench, self.bench.ami_secret, self.resolver, self._ami_collector,
                                               language=self.language, ping_interval=2.0, ping_timeout=1.0,
                                               backoff_max=0.5)
            self._ami_task = asyncio.ensure_future(self.listener.run())
            await asyncio.wait_for(self.listener.client.connected.wait(), 10)

    async def _start_agi(self) -> None:
        host, port = self.bench.agi_address.rsplit(":", 1)
        self.agi = AgiServer(self._routes, host=host, port=int(port), timeout=10.0)
        await self.agi.start()
        self.agi_starts += 1

    async def _stop(self) -> None:
        if self.listener is not None:
            await self.listener.close()
        if self._ami_task is not None:
            self._ami_task.cancel()
            await asyncio.gather(self._ami_task, return_exceptions=True)
        if self.agi is not None:
            await self.agi.close()
        if self.store is not None:
            # Bounded: on Python 3.11 the writer task's asyncio.wait_for can swallow the cancellation Store.close
            # sends, leaving close() waiting on it for ever; a second cancellation (from this timeout) ends it.
            try:
                await asyncio.wait_for(self.store.close(), 15)
            except TimeoutError:
                self.store_close_hung = True
                await self.store.backend.close()

    def _run(self, coro: Any, timeout: float = 30.0) -> Any:
        if self._loop is None:
            raise RuntimeError("the rig is not running")
        return self._loop.run(coro, timeout)

    # -- faults ---------------------------------------------------------------------------------------------------
    def stop_agi(self) -> None:
        """Close the FastAGI listening socket: Asterisk's AGI() now fails to connect and the call goes on."""
        async def close() -> None:
            if self.agi is not None:
                await self.agi.close()
        self._run(close())

    def start_agi(self) -> None:
        """A new FastAGI server on the same port, as after a restart of ``pbx-codes serve``."""
        self._run(self._start_agi())

    def cut_ami(self) -> None:
        """Abort the listener's AMI socket under it, as a network fault would."""
        if self.listener is None:
            raise RuntimeError("the AMI listener is not running")
        listener = self.listener

        async def abort() -> None:
            abort_ami_socket(listener)
        self._run(abort())

    # -- what the runs count --------------------------------------------------------------------------------------
    @property
    def ami_published(self) -> list[Annotation]:
        return list(self._ami_collector.items)

    @property
    def ami_connections(self) -> int:
        return self.listener.client.connections if self.listener is not None else 0

    def flush_store(self, timeout: float = 30.0) -> None:
        """Wait until every annotation published so far is in the database."""
        if self.store is None:
            raise RuntimeError("no store")
        store = self.store
        self._run(store.flush(timeout), timeout + 5)

    def store_linkedids(self) -> list[str]:
        """The call id of every stored annotation (duplicates kept: a lost or doubled row must show)."""
        if self.store is None:
            raise RuntimeError("no store")
        store = self.store

        async def fetch() -> list[tuple[Any, ...]]:
            return await store.backend.fetch("SELECT linkedid FROM hangups")
        return [str(row[0]) for row in self._run(fetch())]


__all__ = ["FaultRig"]
