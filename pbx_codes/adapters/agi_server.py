"""The asyncio FastAGI server: Asterisk's ``AGI(agi://127.0.0.1/annotate?...)`` lands here.

A thin layer around `pbx_codes.protocols.agi.AgiSession`, the core that owns a session's state (request, one command
at a time, its reply, the byte budget). Each connection reads the request, picks the handler by script
name (``annotate``, ``lookup``), lets it run commands one at a time, and closes, which returns control to the
dialplan. Why it looks the way it does:

- Asterisk waits for us in the hangup handler, so a session is bounded by `timeout` as a whole: when it runs out
  the connection is closed and the channel moves on.
- A peer that connects and closes, or sends garbage, costs a parser and a log line at debug level, nothing more:
  no task is started before a complete request.
- It is an `asyncio.Protocol`, not streams: one callback per read and no extra buffering, so a session of ten
  round trips stays cheap. The AMI and ESL clients use the same style (`adapters.reconnect.ClientProtocol`).
- Memory is bounded whatever the peers send: a session may send at most `max_session_bytes` (a real request is
  1-2 KB; the parser alone would keep 256 lines of 8 KB, 2 MB, for the whole timeout), and at most `max_sessions`
  connections hold what they sent at once. A connection takes its slot with its first bytes: Asterisk sends its
  request whole, at once, so when the slots are full the connection that sent the most without finishing a
  request (a flood, a stalled peer) makes room, and a flood cannot lock real calls out. A connection that sends
  nothing holds no bytes; it is closed after `request_timeout`, and at most `max_connections` are open at all (file
  descriptors are finite). Every refusal is counted.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from pbx_codes.errors import PbxConnectionError
from pbx_codes.protocols import ProtocolError
from pbx_codes.protocols.agi import AgiHangup, AgiReply, AgiRequest, SessionTooLarge, StateError
from pbx_codes.protocols.agi import AgiSession as AgiCore

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4573
#: Bytes one connection may send over its whole session (request and replies); a real one sends 1-2 KB.
DEFAULT_MAX_SESSION_BYTES = 32 * 1024
#: Connections open at once; a real PBX has a few in flight (a session lasts milliseconds).
DEFAULT_MAX_SESSIONS = 256
#: Seconds a connection may take to send its whole request (Asterisk sends it at once, right after connecting).
DEFAULT_REQUEST_TIMEOUT = 2.0
#: Connections open at all, sending or not, as a multiple of max_sessions.
CONNECTIONS_PER_SLOT = 4


class AgiSessionClosed(PbxConnectionError):
    """The connection ended (peer closed, timeout, protocol error) while a command waited for its reply."""


@dataclass(slots=True)
class AgiStats:
    """Counters for the console and for tests: what the server saw."""

    connections: int = 0
    sessions: int = 0  # complete requests routed to a handler
    completed: int = 0
    unknown_script: int = 0
    bad_requests: int = 0  # garbage, early close, over-long lines
    handler_errors: int = 0
    timeouts: int = 0
    commands: int = 0  # command lines written to Asterisk
    failed_replies: int = 0  # replies other than "200 result=1" (a refused or unknown command, a failed SET/GET),
    #                          or for EXEC a negative result (no such application)
    too_large: int = 0  # connections closed for sending more than max_session_bytes
    evicted: int = 0  # connections still sending their request, closed to make room for a new one
    refused_busy: int = 0  # connections refused: every slot ran a handler, or max_connections were open
    request_timeouts: int = 0  # connections closed for not sending a whole request within request_timeout
    active: int = 0  # connections holding a slot (they sent something) now
    open: int = 0  # connections open now
    scripts: dict[str, int] = field(default_factory=dict)

    @property
    def refusals(self) -> dict[str, int]:
        """Connections refused or cut by a limit, by reason (for /metrics)."""
        return {"too_large": self.too_large, "evicted": self.evicted, "busy": self.refused_busy,
                "request_timeout": self.request_timeouts}


class AgiSession:
    """What a handler sees: the request and a way to run one command at a time."""

    __slots__ = ("request", "hangup", "_protocol")

    def __init__(self, request: AgiRequest, protocol: _AgiProtocol) -> None:
        self.request = request
        self.hangup = False  # Asterisk sent HANGUP (AGISIGHUP=yes); commands still get answers in a handler
        self._protocol = protocol

    async def command(self, *words: object) -> AgiReply:
        """Send one command (built by `build_command`, so nothing can add a line) and await its reply. Commands
        go one at a time: a second one while the first is unanswered is refused (`StateError`)."""
        return await self._protocol.command(words)

    async def get_full_variable(self, expression: str) -> str | None:
        """``GET FULL VARIABLE``: evaluates ``${...}`` on the channel; None when unset or on failure."""
        reply = await self.command("GET", "FULL", "VARIABLE", expression)
        return reply.value if reply.ok and reply.result == 1 else None

    async def set_variable(self, name: str, value: str) -> bool:
        reply = await self.command("SET", "VARIABLE", name, value)
        return reply.ok and reply.result == 1


Handler = Callable[[AgiSession], Awaitable[None]]


class _AgiProtocol(asyncio.Protocol):
    __slots__ = ("server", "transport", "core", "waiter", "session", "task", "timer", "closed", "opened", "slotted",
                 "request_timer")

    def __init__(self, server: AgiServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.core = AgiCore(max_session_bytes=server.max_session_bytes)
        self.waiter: asyncio.Future[AgiReply] | None = None  # the command in flight (one at a time)
        self.session: AgiSession | None = None
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.opened = 0.0
        self.slotted = False
        self.request_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        server = self.server
        server.stats.connections += 1
        loop = asyncio.get_running_loop()
        self.opened = loop.time()
        if not server.admit(self):
            self.closed = True
            transport.abort()  # type: ignore[attr-defined]
            return
        self.timer = loop.call_later(server.timeout, self._timed_out)
        self.request_timer = loop.call_later(server.request_timeout, self._request_overdue)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        server = self.server
        if not self.slotted:
            if not server.take_slot(self):
                self.abort()
                return
            self.slotted = True
        try:
            messages = self.core.receive_data(data)
        except SessionTooLarge:
            server.stats.too_large += 1
            log.debug("AGI connection dropped: over %d bytes", server.max_session_bytes)
            self.abort()
            return
        except ProtocolError as exc:
            self._bad(f"protocol error: {exc}")
            return
        for message in messages:
            if isinstance(message, AgiReply):
                waiter, self.waiter = self.waiter, None
                if waiter is not None and not waiter.done():
                    waiter.set_result(message)
            elif isinstance(message, AgiRequest):
                self._start(message)
            elif isinstance(message, AgiHangup) and self.session is not None:
                self.session.hangup = True

    def eof_received(self) -> bool | None:
        try:
            self.core.receive_eof()
        except ProtocolError as exc:
            if self.session is None:
                self._bad(str(exc))
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.release(self)
        if self.timer is not None:
            self.timer.cancel()
        if self.request_timer is not None:
            self.request_timer.cancel()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(AgiSessionClosed("AGI connection closed"))
        if self.task is not None and not self.task.done() and self.session is None:
            self.task.cancel()

    @property
    def received(self) -> int:
        """Bytes this connection sent so far (the eviction's measure)."""
        return self.core.received

    async def command(self, words: tuple[object, ...]) -> AgiReply:
        if self.closed or self.transport is None:
            raise AgiSessionClosed("AGI connection closed")
        line = self.core.send_command(*words)  # refuses CR/LF/NUL, an over-long line, a second command in flight
        waiter: asyncio.Future[AgiReply] = asyncio.get_running_loop().create_future()
        self.waiter = waiter
        self.transport.write(line)
        stats = self.server.stats
        stats.commands += 1
        try:
            reply = await waiter
        except asyncio.CancelledError:
            self.core.abandon()  # its reply, when it comes, is not the next command's
            raise
        # EXEC answers with the application's own result (0 when it ran, -2 when there is no such application).
        if not reply.ok or (reply.result != 1 and not (line.startswith(b"EXEC ") and (reply.result or 0) >= 0)):
            stats.failed_replies += 1
        return reply

    def _start(self, request: AgiRequest) -> None:
        stats = self.server.stats
        handler = self.server.routes.get(request.script)
        if handler is None:
            stats.unknown_script += 1
            log.info("AGI request for unknown script %r from %s", request.script[:60], request.channel)
            self._close()
            return
        stats.sessions += 1
        stats.scripts[request.script] = stats.scripts.get(request.script, 0) + 1
        self.session = AgiSession(request, self)
        self.task = asyncio.ensure_future(self._run(handler, self.session))

    async def _run(self, handler: Handler, session: AgiSession) -> None:
        try:
            await handler(session)
            self.server.stats.completed += 1
        except AgiSessionClosed:
            log.debug("AGI %s: connection closed during the session", session.request.script)
        except Exception:
            self.server.stats.handler_errors += 1
            log.exception("AGI handler %r failed", session.request.script)
        finally:
            self._close()

    def _request_overdue(self) -> None:
        if self.session is None and not self.closed:
            self.server.stats.request_timeouts += 1
            log.debug("AGI connection dropped: no whole request within %.1fs", self.server.request_timeout)
            self.abort()

    def _timed_out(self) -> None:
        self.server.stats.timeouts += 1
        log.debug("AGI session timed out after %.1fs", self.server.timeout)
        self._close()

    def _bad(self, why: str) -> None:
        self.server.stats.bad_requests += 1
        log.debug("AGI connection dropped: %s", why)
        self._close()

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection now, unread bytes and all (a flood is not worth a graceful close)."""
        self.closed = True
        self.core.close()  # let go of what it buffered at once
        if self.transport is not None:
            self.transport.abort()


class AgiServer:
    """Routes FastAGI requests by script name to handlers; `start` binds, `close` stops."""

    def __init__(self, routes: Mapping[str, Handler], *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 timeout: float = 10.0, max_sessions: int = DEFAULT_MAX_SESSIONS,
                 max_session_bytes: int = DEFAULT_MAX_SESSION_BYTES,
                 request_timeout: float = DEFAULT_REQUEST_TIMEOUT) -> None:
        self.routes = dict(routes)
        self.host = host
        self.port = port
        self.timeout = timeout
        self.request_timeout = min(timeout, request_timeout)
        self.max_sessions = _positive("max_sessions", max_sessions)
        self.max_connections = self.max_sessions * CONNECTIONS_PER_SLOT
        self.max_session_bytes = _positive("max_session_bytes", max_session_bytes)
        self.stats = AgiStats()
        self._server: asyncio.base_events.Server | None = None
        self._open: dict[_AgiProtocol, None] = {}  # every open connection
        self._slots: dict[_AgiProtocol, None] = {}  # connections that sent something, oldest first

    def admit(self, protocol: _AgiProtocol) -> bool:
        """A new connection: refused only past `max_connections` (it holds no bytes until it sends some)."""
        if len(self._open) >= self.max_connections:
            self.stats.refused_busy += 1
            return False
        self._open[protocol] = None
        self.stats.open = len(self._open)
        return True

    def take_slot(self, protocol: _AgiProtocol) -> bool:
        """A connection's first bytes: past `max_sessions`, the slot holder that sent the most without finishing its
        request (a flood, a stalled peer) makes room; refused only when every slot runs a handler."""
        if len(self._slots) >= self.max_sessions:
            now = asyncio.get_running_loop().time()
            victim = max((p for p in self._slots if p.session is None), key=lambda p: (p.received, now - p.opened),
                         default=None)
            if victim is None:
                self.stats.refused_busy += 1
                log.debug("FastAGI: %d sessions running, connection refused", len(self._slots))
                return False
            self.stats.evicted += 1
            self.release(victim)
            victim.abort()
        self._slots[protocol] = None
        self.stats.active = len(self._slots)
        return True

    def release(self, protocol: _AgiProtocol) -> None:
        self._open.pop(protocol, None)
        self._slots.pop(protocol, None)
        self.stats.active = len(self._slots)
        self.stats.open = len(self._open)

    async def start(self) -> AgiServer:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _AgiProtocol(self), self.host, self.port, backlog=1024)
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        log.info("FastAGI listening on %s:%s (scripts: %s)", self.host, self.port, ", ".join(sorted(self.routes)))
        return self

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> AgiServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _positive(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"[asterisk.agi] {name} must be a positive integer, got {value!r}")
    return value


def agi_limits(section: Mapping[str, object]) -> dict[str, int]:
    """`max_sessions` and `max_session_bytes` from the ``[asterisk.agi]`` table, checked (ValueError names the key).
    At most 4 x max_sessions connections are open at all; a request must arrive whole within 2 s."""
    return {name: _positive(name, section.get(name, default)) for name, default in
            (("max_sessions", DEFAULT_MAX_SESSIONS), ("max_session_bytes", DEFAULT_MAX_SESSION_BYTES))}


__all__ = ["AgiServer", "AgiSession", "AgiSessionClosed", "AgiStats", "DEFAULT_HOST", "DEFAULT_MAX_SESSIONS",
           "DEFAULT_MAX_SESSION_BYTES", "DEFAULT_PORT", "DEFAULT_REQUEST_TIMEOUT", "Handler", "StateError",
           "agi_limits"]
