"""The live feed: one bus subscription fanned out to every open event stream, plus the alerts as they come.

Each browser gets its own bounded queue; one that cannot keep up loses its oldest events, never slows the bus or
the other browsers. The bound holds a burst as large as the bus's own (a central console publishes a second of a
fleet's rows at once), and the pump lets the streams write between chunks of a burst. A stream writes everything
queued in one write; with `?batch=1` consecutive hangups travel as one `hangups` message (a JSON list), so a page
handles thousands a second in a few messages. The last alerts are kept so a page opened later still shows what is
firing.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson

from pbx_codes.console.events import alert_event, annotation_event
from pbx_codes.console.memory_store import MemoryStore
from pbx_codes.sinks.bus import AnnotationBus, Subscription

log = logging.getLogger("pbx_codes.console")

Event = tuple[str, dict[str, Any]]
CLIENT_QUEUE = 10000
#: Annotations the pump hands on before it lets the streams write.
PUMP_CHUNK = 200
#: Events a stream takes from its queue for one write.
WRITE_BATCH = 5000
#: Hangups one `hangups` message carries at most (~350 kB of JSON): a write may hold several messages, and a client's
#: line reader need not take megabytes at once.
MESSAGE_HANGUPS = 500
#: Seconds a stream lets pass between two writes (an event after a quiet spell goes at once): at a fleet's rate one
#: write, one message to the page, carries hundreds of hangups instead of dozens of small ones; each message costs
#: the console a write and the browser a dispatch whatever its size.
WRITE_GAP = 0.05
KEPT_ALERTS = 50


@dataclass(slots=True, eq=False)
class FeedClient:
    """One open event stream; `None` in its queue means the console is closing."""

    queue: asyncio.Queue[Event | None] = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE))
    dropped: int = 0
    #: Only this agent's hangups (alerts all pass); None: the whole fleet.
    instance: str | None = None

    def offer(self, item: Event | None) -> None:
        if self.instance and item is not None and item[0] == "hangup" and item[1].get("instance") != self.instance:
            return
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(item)


@dataclass(slots=True)
class FeedHub:
    """Reads the bus, turns annotations into feed events and hands them to every client."""

    bus: AnnotationBus
    show_numbers: bool = False
    memory: MemoryStore | None = None
    clients: set[FeedClient] = field(default_factory=set)
    alerts: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=KEPT_ALERTS))
    _subscription: Subscription | None = None
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Subscribe now (so nothing published after start is missed) and pump in the background."""
        if self._task is None:
            self._subscription = self.bus.subscribe("console")
            self._task = asyncio.get_running_loop().create_task(self._pump(self._subscription))

    async def _pump(self, sub: Subscription) -> None:
        handed = 0
        while True:
            annotation = await sub.queue.get()  # returns at once while the queue holds more: no other task runs
            try:
                if self.memory is not None:
                    self.memory.add(annotation)
                self.broadcast(("hangup", annotation_event(annotation, self.show_numbers)))
            except Exception:  # one odd annotation must not end the feed
                log.exception("console: cannot show an annotation")
            handed += 1
            if handed >= PUMP_CHUNK:  # a burst: let the streams write what they hold before the next chunk
                handed = 0
                await asyncio.sleep(0)

    def on_alert(self, alert: Any) -> None:
        """Alert callback: keep it for late pages and send it to every open stream."""
        event = alert_event(alert)
        self.alerts.append(event)
        self.broadcast(("alert", event))

    def broadcast(self, event: Event) -> None:
        for client in self.clients:
            client.offer(event)

    def connect(self, instance: str | None = None) -> FeedClient:
        client = FeedClient(instance=instance)
        self.clients.add(client)
        return client

    def disconnect(self, client: FeedClient) -> None:
        self.clients.discard(client)

    async def close(self) -> None:
        """End every stream and stop reading the bus."""
        for client in self.clients:
            client.offer(None)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._subscription is not None:
            self.bus.unsubscribe(self._subscription)
            self._subscription = None


def take_queued(client: FeedClient, first: Event | None, limit: int = WRITE_BATCH) -> tuple[list[Event], bool]:
    """`first` and whatever else the client's queue holds (up to `limit`): the events, and whether it is closing."""
    items: list[Event] = []
    item = first
    while True:
        if item is None:
            return items, True
        items.append(item)
        if len(items) >= limit or client.queue.empty():
            return items, False
        item = client.queue.get_nowait()


def encode_events(items: list[Event], batched: bool) -> bytes:
    """Server-sent event messages, JSON data (JSON escapes CR/LF: one data line each). Batched: a run of hangups
    is one `hangups` message carrying the list, serialised in C (orjson): at a fleet's rate it is the console's
    largest cost per row after reading it."""
    out: list[bytes] = []
    run: list[dict[str, Any]] = []

    def flush() -> None:
        if run:
            out.append(b"event: hangups\ndata: " + orjson.dumps(run, default=str, option=orjson.OPT_NON_STR_KEYS)
                       + b"\n\n")
            run.clear()

    for name, data in items:
        if batched and name == "hangup":
            run.append(data)
            if len(run) >= MESSAGE_HANGUPS:
                flush()
            continue
        flush()
        out.append(f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n".encode())
    flush()
    return b"".join(out)


__all__ = ["CLIENT_QUEUE", "MESSAGE_HANGUPS", "WRITE_GAP", "FeedClient", "FeedHub", "encode_events", "take_queued"]
