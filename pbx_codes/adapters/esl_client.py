"""asyncio inbound ESL client: connect, authenticate, subscribe, reconnect, watch the heartbeat.

Thin by design: `pbx_codes.protocols.esl.EslConnection` owns the connection's state (auth -> subscription, the
reply FIFO, bgapi Job-UUIDs, the bounds); this layer moves its bytes through the shared `ClientProtocol` and adds
time and failure, through the one reconnecting-client shape (`ReconnectingClient`):
- reconnect by `pbx_codes.adapters.reconnect`: a short probe period while FreeSWITCH refuses connections (back
  within about a second of it listening again, however long it was down); a wrong password backs off for
  `auth_failure_backoff` seconds at least (a tight loop would only fill FreeSWITCH's log); a server that accepts
  the password and then breaks backs off longer each time. Each change of state is logged once, with its reason;
- a watchdog: no frame at all for `heartbeat_timeout` seconds (FreeSWITCH sends HEARTBEAT every 20 s) means the
  connection is dead even if TCP has not noticed; the client drops it and reconnects;
- every disconnect logs the window during which events may have been missed, so an operator knows which CDRs to
  re-check with ``pbx-codes enrich``.
- ``api`` answers come back in order on the socket (the core's FIFO); ``bgapi`` sends its own ``Job-UUID``
  header so the BACKGROUND_JOB event is matched to the caller without racing the command reply;
- an event handler may be a coroutine function: reading pauses until it is done, so events stay in order and
  a slow consumer holds FreeSWITCH back instead of filling memory.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
import uuid as uuid_mod
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pbx_codes.adapters.reconnect import BackoffPolicy, ClientProtocol, ReconnectingClient
from pbx_codes.adapters.secrets import read_secret
from pbx_codes.errors import AuthenticationError, CommandError, PbxConnectionError
from pbx_codes.protocols import StateError
from pbx_codes.protocols.esl import (
    ApiResponse,
    CommandReply,
    DisconnectNotice,
    EslConnection,
    EslState,
    Event,
    JobDone,
    ProtocolError,
    Reply,
    StateChanged,
)
from pbx_codes.timeouts import within

log = logging.getLogger("pbx_codes.esl")

DEFAULT_EVENTS: tuple[str, ...] = ("CHANNEL_CREATE", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "HEARTBEAT",
                                   "BACKGROUND_JOB")


class EslAuthError(AuthenticationError):
    """FreeSWITCH refused the password (``-ERR invalid``)."""


class EslConnectionLost(PbxConnectionError):
    """The connection ended (EOF, watchdog, protocol error) while a command was waiting."""


class EslUnreachable(PbxConnectionError):
    """No TCP connection to the event socket (refused, timed out, no route)."""


@dataclass(frozen=True, slots=True)
class EslClientConfig:
    """Connection settings; the password is passed in, read by the caller from env or a secret file."""

    host: str = "127.0.0.1"
    port: int = 8021
    password: str = field(default="", repr=False)  # never in a log line or a traceback
    events: tuple[str, ...] = DEFAULT_EVENTS
    event_format: str = "json"  # json | plain
    connect_timeout: float = 5.0
    command_timeout: float = 10.0
    heartbeat_timeout: float = 60.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    auth_failure_backoff: float = 60.0
    probe_interval: float = 0.5  # between connect attempts while FreeSWITCH refuses connections
    stable_after: float = 5.0  # a session subscribed this long worked, even if it carried nothing
    jitter: float = 0.2
    read_size: int = 65536
    # Events to decode and hand to on_event (None: all). Others are skipped unread by the parser; BACKGROUND_JOB
    # is always added, since bgapi waits for it.
    wanted_events: frozenset[str] | None = None

    @property
    def backoff(self) -> BackoffPolicy:
        return BackoffPolicy(initial=self.reconnect_min, maximum=self.reconnect_max, jitter=self.jitter,
                             probe_interval=self.probe_interval, refused_minimum=self.auth_failure_backoff,
                             stable_after=self.stable_after)


EventHandler = Callable[[Event], "Awaitable[None] | None"]


class EslClient(ReconnectingClient):
    """One logical ESL session that survives reconnects. ``run()`` until cancelled (or `close`); ``api``/``bgapi``
    meanwhile."""

    kind = "ESL"
    unreachable = EslUnreachable

    def __init__(self, config: EslClientConfig, on_event: EventHandler | None = None, *,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep, rng: random.Random | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(config.host, config.port, config.backoff, logger=log, connect_timeout=config.connect_timeout,
                         sleep=sleep, rng=rng, clock=clock)
        self.config = config
        self._on_event = on_event
        self._conn: EslConnection | None = None
        self._replies: dict[int, asyncio.Future[Any]] = {}
        self._jobs: dict[str, asyncio.Future[str]] = {}
        self._progress = asyncio.Event()  # a handshake step was answered
        self._refusal = ""
        self._backlog: deque[Any] | None = None  # items held while an async handler runs (reading is paused)

    @property
    def last_frame_at(self) -> float | None:
        """Wall-clock time of the last bytes from FreeSWITCH."""
        return self.last_traffic_at

    # --- public API -------------------------------------------------------------------------------------------

    async def api(self, *parts: str) -> ApiResponse:
        """``api <parts>``: the API's output. FreeSWITCH reports failure in the text (check ``.ok``)."""
        reply = await self._command(("api", *parts))
        if not isinstance(reply, ApiResponse):
            raise ProtocolError(f"expected api/response, got {type(reply).__name__}")
        return reply

    async def bgapi(self, *parts: str, timeout: float | None = None) -> str:
        """``bgapi <parts>``: waits for the matching BACKGROUND_JOB and returns its body."""
        job_uuid = str(uuid_mod.uuid4())
        job: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._jobs[job_uuid] = job
        try:
            reply = await self._command(parts, job_uuid=job_uuid)
            if not isinstance(reply, CommandReply) or not reply.ok:
                text = reply.reply_text if isinstance(reply, CommandReply) else type(reply).__name__
                raise EslCommandError(f"bgapi refused: {text}")
            return await within(job, timeout or self.config.command_timeout)
        finally:
            self._jobs.pop(job_uuid, None)
            if self._conn is not None:
                self._conn.abandon_job(job_uuid)

    async def command(self, *parts: str) -> CommandReply:
        """Any other command (``filter``, ``event`` ...) answered by a command/reply."""
        reply = await self._command(parts)
        if not isinstance(reply, CommandReply):
            raise ProtocolError(f"expected command/reply, got {type(reply).__name__}")
        return reply

    # --- one connection ---------------------------------------------------------------------------------------

    async def _session(self) -> None:
        cfg = self.config
        conn = self._conn = EslConnection(cfg.password, events=cfg.events, event_format=cfg.event_format,
                                          wanted_events=cfg.wanted_events)
        protocol = await self._connect(self._received)
        await self._until(lambda: conn.state in (EslState.SUBSCRIBED, EslState.REFUSED), self._progress, protocol,
                          cfg.connect_timeout, lambda: conn.awaiting)
        if conn.state is EslState.REFUSED:
            raise EslAuthError(f"FreeSWITCH refused the password: {self._refusal or 'auth refused'}")
        self._up(f"subscribed ({' '.join(cfg.events)})")
        loop = asyncio.get_running_loop()
        while True:  # the watchdog: FreeSWITCH sends HEARTBEAT every 20 s, so silence means a dead connection
            wait = protocol.last_read + cfg.heartbeat_timeout - loop.time()
            if wait <= 0 and self._backlog is None:
                raise EslConnectionLost(f"watchdog: nothing from FreeSWITCH for {cfg.heartbeat_timeout:.0f} s")
            done, _ = await asyncio.wait({protocol.ended}, timeout=max(wait, 0.01))
            if done:
                self._raise_ended(protocol)

    def _handshake_timeout(self, what: str, timeout: float) -> Exception:
        return EslConnectionLost(f"no {what} within {timeout:g} s")

    def _received(self, data: bytes) -> bytes | None:
        conn = self._conn
        assert conn is not None
        self.last_traffic_at = self._clock()
        items = conn.receive_data(data)
        if conn.carried:
            self._carried = True
        if items:
            if self._backlog is not None:  # an async handler is still running: keep the order
                self._backlog.extend(items)
            else:
                self._deliver(deque(items))
        return conn.data_to_send()

    def _deliver(self, items: deque[Any]) -> None:
        """Hand items on in order; an async handler pauses reading until it is done."""
        while items:
            item = items.popleft()
            cls = item.__class__
            if cls is Event:
                if self._on_event is None:
                    continue
                try:
                    result = self._on_event(item)
                except Exception:  # a handler bug must not take the connection down
                    log.exception("ESL event handler failed on %s", item.name)
                    continue
                if inspect.isawaitable(result):
                    self._backlog = items
                    protocol = self._protocol
                    if protocol is not None and protocol.transport is not None:
                        protocol.transport.pause_reading()
                    task = asyncio.ensure_future(result)
                    name: str = item.name
                    # The loop returns right below: name and protocol are this item's for good.
                    task.add_done_callback(lambda t: self._handled(t, name, protocol))  # noqa: B023
                    return
            elif cls is Reply:
                future = self._replies.pop(item.token, None)
                if future is not None and not future.done():
                    future.set_result(item.frame)
            elif cls is JobDone:
                job = self._jobs.get(item.job_uuid)
                if job is not None and not job.done():
                    job.set_result(item.body)
            elif cls is StateChanged:
                self._refusal = item.reason
                self._progress.set()
            elif cls is DisconnectNotice:
                raise EslConnectionLost("FreeSWITCH sent a disconnect notice")

    def _handled(self, task: asyncio.Future[Any], name: str, protocol: ClientProtocol | None) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("ESL event handler failed on %s", name, exc_info=task.exception())
        items, self._backlog = self._backlog, None
        if protocol is None or protocol.ended.done() or items is None:
            return
        try:
            self._deliver(items)
        except BaseException as exc:
            protocol.fail(exc)
            return
        if self._backlog is None and protocol.transport is not None and not protocol.transport.is_closing():
            protocol.transport.resume_reading()

    async def _command(self, parts: tuple[str, ...], job_uuid: str | None = None) -> Any:
        if self._conn is None or not self.connected.is_set():
            await within(self.connected.wait(), self.config.command_timeout)
        conn, protocol = self._conn, self._protocol
        if conn is None or protocol is None:
            raise EslConnectionLost("not connected")
        try:
            token = conn.bgapi(job_uuid, *parts) if job_uuid is not None else conn.command(*parts)
        except StateError as exc:
            raise EslConnectionLost(f"cannot send {parts[:1]}: {exc}") from None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[token] = future
        protocol.write(conn.data_to_send())
        try:
            return await within(future, self.config.command_timeout)
        finally:
            if self._replies.pop(token, None) is not None:
                conn.abandon(token)  # FreeSWITCH will still answer: the reply keeps its slot and is dropped

    def _drop(self, reason: BaseException) -> None:
        conn, self._conn = self._conn, None
        self._backlog = None
        if conn is not None and conn.state is not EslState.CLOSED:
            conn.close()
        exc = EslConnectionLost(f"ESL connection lost before the reply ({reason})")
        replies, self._replies = self._replies, {}
        for future in [*replies.values(), *self._jobs.values()]:
            if not future.done():
                future.set_exception(exc)


class EslCommandError(CommandError):
    """FreeSWITCH answered a command with -ERR."""


__all__ = ["DEFAULT_EVENTS", "EslAuthError", "EslClient", "EslClientConfig", "EslCommandError",
           "EslConnectionLost", "EslUnreachable", "read_secret"]
