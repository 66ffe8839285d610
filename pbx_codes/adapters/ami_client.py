"""The asyncio AMI client: connect, log in, filter, send actions and await their answers, keep the link alive.

A thin layer around `pbx_codes.protocols.ami`: the parser frames the bytes; this module owns the socket, the
clock and the errors. Why each piece exists:

- Actions are answered by ``ActionID``: every action gets a fresh id and a future; a response completes it.
- A half-open TCP connection (the PBX rebooted, a firewall forgot us) looks like a quiet server. A ``Ping`` every
  `ping_interval` seconds with no answer within `ping_timeout` drops the connection and reconnects.
- Reconnects follow `pbx_codes.adapters.reconnect`: a short probe period while Asterisk refuses connections (back
  within about a second of it listening again), at least `refused_backoff` after a refused login, a growing wait
  for a server that accepts the login and then breaks. Events sent while disconnected are lost: the window is
  logged so a gap in the data can be explained.
- A refused login never ends `run`: the FastAGI server and everything else keep working, the state (``refused``)
  is logged once and shown in /metrics and the console, and the login is tried again, patiently.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable

from pbx_codes import status as states
from pbx_codes.errors import AuthenticationError, PbxCodesError, PbxConnectionError
from pbx_codes.adapters.reconnect import Backoff, BackoffPolicy, Ending
from pbx_codes.protocols import ProtocolError
from pbx_codes.protocols.ami import AmiParser, Banner, Event, Response, build_action
from pbx_codes.status import PartStatus, describe_error
from pbx_codes.timeouts import within

log = logging.getLogger(__name__)


class AmiError(PbxCodesError):
    """An AMI action failed or the connection is unusable."""


class AmiAuthError(AmiError, AuthenticationError):
    """The server refused our login (wrong user or secret, or no permission)."""


class AmiNotConnected(AmiError, PbxConnectionError):
    """An action was sent while no connection is up (or it dropped before the answer)."""


class AmiUnreachable(AmiError, PbxConnectionError):
    """No TCP connection to the AMI port (refused, timed out, no route)."""


@dataclass(frozen=True, slots=True)
class AmiSettings:
    """Where and how to connect. The secret is passed to `AmiClient` separately, so it never sits in a config dump."""

    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "pbx-codes"
    events: str = "on"  # the Login ``Events`` header: on, off, or a class list (call,cdr,...)
    filters: tuple[str, ...] = ()  # server-side ``Filter`` expressions, e.g. ("Event: Hangup",)
    wanted_events: frozenset[str] | None = None  # decode only these (None: all)
    connect_timeout: float = 5.0
    action_timeout: float = 5.0
    ping_interval: float = 20.0
    ping_timeout: float = 5.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    jitter: float = 0.2  # +/- fraction of each backoff delay
    probe_interval: float = 0.5  # between connect attempts while Asterisk refuses connections
    refused_backoff: float = 60.0  # at least this long after a refused login
    stable_after: float = 5.0  # a session up this long worked, even if it carried nothing
    read_size: int = 65536

    @property
    def backoff(self) -> BackoffPolicy:
        return BackoffPolicy(initial=self.backoff_initial, maximum=self.backoff_max, jitter=self.jitter,
                             probe_interval=self.probe_interval, refused_minimum=self.refused_backoff,
                             stable_after=self.stable_after)


def filters_for(events: Iterable[str]) -> tuple[str, ...]:
    """Server-side filter expressions that let only these events through (responses always pass)."""
    return tuple(f"Event: {name}" for name in sorted(events))


class AmiClient:
    """One AMI connection, kept up by `run` until `close`. `on_event` is called for each decoded event."""

    def __init__(self, settings: AmiSettings, secret: str, on_event: Callable[[Event], None], *,
                 on_connected: Callable[[], None] | None = None, rng: random.Random | None = None,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.settings = settings
        self._sleep = sleep
        self._secret = secret
        self._on_event = on_event
        self._on_connected = on_connected
        self._rng = rng or random.Random()
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[Response]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._closing = False
        self.connected = asyncio.Event()
        self.connections = 0  # successful logins
        self.attempts = 0  # connection attempts
        self.disconnected_at: float | None = None
        self.missed_windows: list[tuple[float, float]] = []  # (wall-clock start, end) of each gap
        self.banner: str | None = None
        self.status = PartStatus(f"AMI {settings.host}:{settings.port}", logger=log)
        self._healthy = False  # this session carried well-formed traffic after the login
        self._up_since: float | None = None  # monotonic time of this session's login

    def __repr__(self) -> str:  # the secret must never show up in a log line or a traceback
        return f"AmiClient({self.settings.host}:{self.settings.port}, user={self.settings.username!r})"

    # -- public -------------------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Connect and serve until `close`, reconnecting after any failure (a refused login included)."""
        backoff = Backoff(self.settings.backoff, self._rng)
        s = self.settings
        while not self._closing:
            self._healthy, self._up_since = False, None
            connections_before = self.connections
            try:
                await self._session()
            except AmiAuthError as exc:
                ending, reason = Ending.REFUSED, str(exc)
                self.status.refusals += 1
            except AmiUnreachable as exc:
                ending, reason = Ending.UNREACHABLE, str(exc)
            except (OSError, asyncio.TimeoutError, ProtocolError, AmiError, EOFError) as exc:
                stable = self._up_since is not None and time.monotonic() - self._up_since >= backoff.policy.stable_after
                healthy = (self._healthy or stable) and not isinstance(exc, ProtocolError)
                ending, reason = (Ending.ENDED if healthy else Ending.FAILED), describe_error(exc)
            except Exception as exc:  # a bug must not end the listener: say so, back off, try again
                log.exception("AMI %s:%s: session failed", s.host, s.port)
                ending, reason = Ending.FAILED, describe_error(exc)
            finally:
                self._drop()
            if self._closing:
                break
            delay = backoff.after(ending)
            if ending is not Ending.ENDED:
                self.status.failures += 1
            lost = " (connection lost)" if self.connections > connections_before else ""
            state = {Ending.REFUSED: states.REFUSED, Ending.FAILED: states.FAILING}.get(ending, states.UNREACHABLE)
            self.status.set(state, f"{reason}{lost}; next try in {delay:.1f} s")
            log.debug("AMI reconnect to %s:%s in %.2fs (%s)", s.host, s.port, delay, reason)
            await self._sleep(delay)

    async def send_action(self, name: str, /, timeout: float | None = None, **headers: object) -> Response:
        """Send one action and return its response (raises `AmiNotConnected`, or TimeoutError on no answer)."""
        writer = self._writer
        if writer is None or writer.is_closing():
            raise AmiNotConnected(f"not connected, cannot send {name}")
        action_id = f"pbxc-{next(self._ids)}"
        data = build_action(name, ActionID=action_id, **headers)
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = future
        try:
            writer.write(data)
            return await within(future, timeout or self.settings.action_timeout)
        finally:
            self._pending.pop(action_id, None)

    async def close(self) -> None:
        """Stop `run` and drop the connection."""
        self._closing = True
        writer = self._writer
        if writer is not None and not writer.is_closing():
            try:
                writer.write(build_action("Logoff", ActionID=f"pbxc-{next(self._ids)}"))
            except (OSError, RuntimeError):
                pass
        self._drop()

    # -- internals ----------------------------------------------------------------------------------------------
    async def _session(self) -> None:
        s = self.settings
        self.attempts += 1
        try:
            reader, writer = await within(asyncio.open_connection(s.host, s.port), s.connect_timeout)
        except TimeoutError:
            raise AmiUnreachable(f"no TCP connection within {s.connect_timeout:g} s") from None
        except OSError as exc:
            raise AmiUnreachable(describe_error(exc, "connect")) from None
        self._writer = writer
        parser = AmiParser(s.wanted_events)
        reader_task = asyncio.ensure_future(self._read(reader, parser))
        try:
            login = await self._await_or_reader(self.send_action(
                "Login", Username=s.username, Secret=self._secret, Events=s.events), reader_task, "Login")
            if not login.ok:
                raise AmiAuthError(f"AMI login as {s.username!r} refused: {login.message or login.status}")
            for expression in s.filters:
                answer = await self._await_or_reader(
                    self.send_action("Filter", Operation="Add", Filter=expression), reader_task, "Filter")
                if not answer.ok:
                    log.warning("AMI filter %r refused: %s", expression, answer.message)
            self.connections += 1
            now = time.time()
            if self.disconnected_at is not None:
                self.missed_windows.append((self.disconnected_at, now))
                log.warning("AMI events from %s to %s (%.1fs) were missed while disconnected",
                            _stamp(self.disconnected_at), _stamp(now), now - self.disconnected_at)
                self.disconnected_at = None
            self.status.set(states.UP, f"logged in as {s.username!r}")
            self._up_since = time.monotonic()
            self.connected.set()
            if self._on_connected is not None:
                self._on_connected()
            pinger = asyncio.ensure_future(self._watchdog())
            try:
                done, _ = await asyncio.wait({reader_task, pinger}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                pinger.cancel()
            for task in done:
                task.result()  # re-raise what ended the session
            raise EOFError("AMI connection closed by the server")
        finally:
            reader_task.cancel()
            if self.connected.is_set():
                self.disconnected_at = time.time()
            self.connected.clear()

    async def _await_or_reader(self, action: "asyncio.Future[Response] | object", reader_task: asyncio.Task[None],
                               name: str = "action") -> Response:
        """Await an action's answer, but fail at once if the reader ended (connection closed, protocol error)."""
        task = asyncio.ensure_future(action)  # type: ignore[arg-type]
        done, _ = await asyncio.wait({task, reader_task}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            try:
                return task.result()
            except TimeoutError:
                raise AmiError(f"no answer to {name} within {self.settings.action_timeout:g} s") from None
        task.cancel()
        reader_task.result()
        raise EOFError("AMI connection closed during login")

    async def _read(self, reader: asyncio.StreamReader, parser: AmiParser) -> None:
        size = self.settings.read_size
        while True:
            data = await reader.read(size)
            if not data:
                return
            for message in parser.feed(data):
                if isinstance(message, Event) or self.connected.is_set():
                    self._healthy = True  # well-formed traffic after the login (events only come after it)
                if isinstance(message, Event):
                    try:
                        self._on_event(message)
                    except Exception:  # a bug in a consumer must not kill the connection
                        log.exception("AMI event handler failed on %s", message.name)
                elif isinstance(message, Response):
                    future = self._pending.get(message.action_id or "")
                    if future is not None and not future.done():
                        future.set_result(message)
                elif isinstance(message, Banner):
                    self.banner = message.version

    async def _watchdog(self) -> None:
        s = self.settings
        while True:
            await asyncio.sleep(s.ping_interval)
            try:
                await self.send_action("Ping", timeout=s.ping_timeout)
            except asyncio.TimeoutError:
                raise AmiError(f"no answer to Ping within {s.ping_timeout}s: dropping the connection") from None

    def _drop(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(AmiNotConnected("AMI connection lost before the answer"))
        self._pending.clear()


def _stamp(wall: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(wall)) + f".{int(wall % 1 * 1000):03d}"


__all__ = ["AmiAuthError", "AmiClient", "AmiError", "AmiNotConnected", "AmiSettings", "AmiUnreachable",
           "filters_for"]
