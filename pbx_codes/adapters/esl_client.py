"""asyncio inbound ESL client: connect, authenticate, subscribe, reconnect, watch the heartbeat.

Thin by design: bytes go through `pbx_codes.protocols.esl.EslParser`, commands through `build_command`. What this
layer adds is time and failure:
- reconnect by `pbx_codes.adapters.reconnect`: a short probe period while FreeSWITCH refuses connections (back
  within about a second of it listening again, however long it was down); a wrong password backs off for
  `auth_failure_backoff` seconds at least (a tight loop would only fill FreeSWITCH's log); a server that accepts
  the password and then breaks backs off longer each time. Each change of state is logged once, with its reason;
- a watchdog: no frame at all for `heartbeat_timeout` seconds (FreeSWITCH sends HEARTBEAT every 20 s) means the
  connection is dead even if TCP has not noticed; the client drops it and reconnects;
- every disconnect logs the window during which events may have been missed, so an operator knows which CDRs to
  re-check with ``pbx-codes enrich``.
- ``api`` answers come back in order on the socket (a FIFO of futures); ``bgapi`` sends its own ``Job-UUID``
  header so the BACKGROUND_JOB event is matched to the caller without racing the command reply.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
import uuid as uuid_mod
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from pbx_codes import status as states
from pbx_codes.errors import AuthenticationError, CommandError, PbxConnectionError
from pbx_codes.adapters.reconnect import Backoff, BackoffPolicy, Ending
from pbx_codes.protocols.esl import (
    ApiResponse, AuthRequest, CommandReply, DisconnectNotice, EslParser, Event, ProtocolError, build_command,
)
from pbx_codes.adapters.secrets import read_secret
from pbx_codes.status import PartStatus, describe_error
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


class EslClient:
    """One logical ESL session that survives reconnects. ``run()`` until cancelled; ``api``/``bgapi`` meanwhile."""

    def __init__(self, config: EslClientConfig, on_event: EventHandler | None = None, *,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep, rng: random.Random | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._on_event = on_event
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock = clock
        self._writer: asyncio.StreamWriter | None = None
        self._replies: deque[asyncio.Future] = deque()
        self._jobs: dict[str, asyncio.Future] = {}
        self._send_lock = asyncio.Lock()
        self.connected = asyncio.Event()
        self.connections = 0
        self.last_frame_at: float | None = None
        self.last_error: BaseException | None = None
        self.attempts = 0
        self.status = PartStatus(f"ESL {config.host}:{config.port}", logger=log)
        self._tcp = False  # this attempt got a TCP connection
        self._healthy = False  # this session carried a well-formed frame after the subscription
        self._up_since: float | None = None  # monotonic time of this session's subscription

    # --- public API -------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect and serve forever, reconnecting (see the module's docstring). Cancel the task to stop."""
        backoff = Backoff(self.config.backoff, self._rng)
        cfg = self.config
        lost_at: float | None = None
        while True:
            self._tcp = self._healthy = False
            self._up_since = None
            try:
                await self._session(lost_at)
                err: BaseException = EslConnectionLost("connection closed by FreeSWITCH")
            except asyncio.CancelledError:
                raise
            except (EslAuthError, EslUnreachable, OSError, ProtocolError, EslConnectionLost, asyncio.TimeoutError,
                    asyncio.IncompleteReadError) as exc:
                err = exc
            except Exception as exc:  # a bug must not end the listener: say so, back off, try again
                log.exception("ESL %s:%s: session failed", cfg.host, cfg.port)
                err = exc
            self.last_error = err
            was_connected = self.connected.is_set()
            self.connected.clear()
            self._fail_pending(EslConnectionLost(describe_error(err)))
            if was_connected or lost_at is None:
                lost_at = self.last_frame_at or self._clock()
            if isinstance(err, EslAuthError):
                self.status.refusals += 1
                ending, state = Ending.REFUSED, states.REFUSED
            elif not self._tcp:
                ending, state = Ending.UNREACHABLE, states.UNREACHABLE
            elif (self._healthy or self._stable(backoff.policy.stable_after)) and not isinstance(err, ProtocolError):
                ending, state = Ending.ENDED, states.UNREACHABLE
            else:
                ending, state = Ending.FAILED, states.FAILING
            delay = backoff.after(ending)
            if ending is not Ending.ENDED:
                self.status.failures += 1
            if ending is Ending.REFUSED:
                reason = (f"FreeSWITCH refused the password ({describe_error(err)}); not retrying for {delay:.0f} s: "
                          "fix the secret")
            else:
                reason = (f"disconnected ({describe_error(err)}); events since {_stamp(lost_at)} "
                          f"are not being observed; reconnecting in {delay:.1f} s")
            self.status.set(state, reason)
            log.debug("ESL %s:%s: next attempt in %.2f s (%s)", cfg.host, cfg.port, delay, describe_error(err))
            await self._sleep(delay)

    async def api(self, *parts: str) -> ApiResponse:
        """``api <parts>``: the API's output. FreeSWITCH reports failure in the text (check ``.ok``)."""
        reply = await self._command(build_command("api", *parts))
        if not isinstance(reply, ApiResponse):
            raise ProtocolError(f"expected api/response, got {type(reply).__name__}")
        return reply

    async def bgapi(self, *parts: str, timeout: float | None = None) -> str:
        """``bgapi <parts>``: waits for the matching BACKGROUND_JOB and returns its body."""
        job_uuid = str(uuid_mod.uuid4())
        loop = asyncio.get_running_loop()
        job: asyncio.Future = loop.create_future()
        self._jobs[job_uuid] = job
        try:
            reply = await self._command(build_command("bgapi", *parts, headers={"Job-UUID": job_uuid}))
            if not isinstance(reply, CommandReply) or not reply.ok:
                text = reply.reply_text if isinstance(reply, CommandReply) else type(reply).__name__
                raise EslCommandError(f"bgapi refused: {text}")
            return await within(job, timeout or self.config.command_timeout)
        finally:
            self._jobs.pop(job_uuid, None)

    async def command(self, *parts: str) -> CommandReply:
        """Any other command (``filter``, ``event`` ...) answered by a command/reply."""
        reply = await self._command(build_command(*parts))
        if not isinstance(reply, CommandReply):
            raise ProtocolError(f"expected command/reply, got {type(reply).__name__}")
        return reply

    # --- one connection ---------------------------------------------------------------------------------------

    async def _session(self, lost_at: float | None) -> None:
        cfg = self.config
        self.attempts += 1
        try:
            reader, writer = await within(asyncio.open_connection(cfg.host, cfg.port), cfg.connect_timeout)
        except TimeoutError:
            raise EslUnreachable(f"no TCP connection within {cfg.connect_timeout:g} s") from None
        except OSError as exc:
            raise EslUnreachable(describe_error(exc, "connect")) from None
        self._tcp = True
        parser = EslParser(None if cfg.wanted_events is None else cfg.wanted_events | {"BACKGROUND_JOB"})
        self._writer = writer
        try:
            frames: deque = deque()

            async def next_frame() -> Any:
                while not frames:
                    data = await within(reader.read(cfg.read_size), cfg.heartbeat_timeout)
                    if not data:
                        raise EslConnectionLost("EOF from FreeSWITCH")
                    self.last_frame_at = self._clock()
                    frames.extend(parser.feed(data))
                return frames.popleft()

            async def expect(what: str) -> Any:
                try:
                    return await within(next_frame(), cfg.connect_timeout)
                except TimeoutError:
                    raise EslConnectionLost(f"no {what} within {cfg.connect_timeout:g} s") from None

            first = await expect("auth/request")
            if not isinstance(first, AuthRequest):
                raise ProtocolError(f"expected auth/request, got {type(first).__name__}")
            writer.write(build_command("auth", cfg.password))
            reply = await expect("reply to auth")
            if not isinstance(reply, CommandReply):
                raise ProtocolError(f"expected a reply to auth, got {type(reply).__name__}")
            if not reply.ok:
                raise EslAuthError(reply.reply_text or "auth refused")
            writer.write(build_command("event", cfg.event_format, *cfg.events))
            reply = await expect("reply to the event subscription")
            if not isinstance(reply, CommandReply) or not reply.ok:
                raise ProtocolError(f"event subscription refused: {getattr(reply, 'reply_text', reply)!r}")
            self.connections += 1
            self.connected.set()
            if lost_at is not None:
                log.warning("ESL %s:%s reconnected; events between %s and %s were missed", cfg.host, cfg.port,
                            _stamp(lost_at), _stamp(self._clock()))
            self.status.set(states.UP, f"subscribed ({' '.join(cfg.events)})")
            self._up_since = time.monotonic()
            while True:
                try:
                    frame = await next_frame()
                except asyncio.TimeoutError:
                    raise EslConnectionLost(
                        f"watchdog: nothing from FreeSWITCH for {cfg.heartbeat_timeout:.0f} s") from None
                if not isinstance(frame, DisconnectNotice):
                    self._healthy = True  # a well-formed frame after the subscription: this server works
                await self._dispatch(frame)
        finally:
            self._writer = None
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, asyncio.CancelledError):
                pass

    async def _dispatch(self, frame: Any) -> None:
        if isinstance(frame, (CommandReply, ApiResponse)):
            # FreeSWITCH answers every command, in order, even one whose caller gave up (timeout, cancel): its
            # reply takes its slot, or it would be handed to the next caller and every later answer would shift.
            if self._replies:
                fut = self._replies.popleft()
                if not fut.done():
                    fut.set_result(frame)
            return
        if isinstance(frame, DisconnectNotice):
            raise EslConnectionLost("FreeSWITCH sent a disconnect notice")
        if isinstance(frame, Event):
            if frame.name == "BACKGROUND_JOB":
                job = self._jobs.get(str(frame.get("Job-UUID", "")))
                if job is not None and not job.done():
                    job.set_result(frame.body or "")
            if self._on_event is not None:
                try:
                    result = self._on_event(frame)
                    if inspect.isawaitable(result):
                        await result
                except Exception:  # a handler bug must not take the connection down
                    log.exception("ESL event handler failed on %s", frame.name)

    async def _command(self, data: bytes) -> Any:
        if self._writer is None or not self.connected.is_set():
            await within(self.connected.wait(), self.config.command_timeout)
        writer = self._writer
        if writer is None:
            raise EslConnectionLost("not connected")
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        async with self._send_lock:
            self._replies.append(fut)
            writer.write(data)
            await writer.drain()
        return await within(fut, self.config.command_timeout)

    def _stable(self, seconds: float) -> bool:
        """The session that just ended had stayed subscribed `seconds` at least."""
        return self._up_since is not None and time.monotonic() - self._up_since >= seconds

    def _fail_pending(self, exc: BaseException) -> None:
        while self._replies:
            fut = self._replies.popleft()
            if not fut.done():
                fut.set_exception(exc)
        for fut in self._jobs.values():
            if not fut.done():
                fut.set_exception(exc)


class EslCommandError(CommandError):
    """FreeSWITCH answered a command with -ERR."""


def _stamp(ts: float | None) -> str:
    if ts is None:
        return "?"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) + f".{int((ts % 1) * 1000):03d}"


__all__ = ["DEFAULT_EVENTS", "EslAuthError", "EslClient", "EslClientConfig", "EslCommandError",
           "EslConnectionLost", "EslUnreachable", "read_secret"]
