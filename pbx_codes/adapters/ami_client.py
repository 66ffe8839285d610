"""The asyncio AMI client: connect, log in, filter, send actions and await their answers, keep the link alive.

A thin layer around `pbx_codes.protocols.ami.AmiConnection`, which owns the connection's state: the Login and the
filters, which answer goes to which action (``ActionID``), the bounds. This module moves its bytes (through the
shared `ClientProtocol`) and keeps time; `ReconnectingClient` keeps it up. Why each piece exists:

- Every action gets a future keyed by the ActionID the core chose; a caller that gives up abandons it, so the
  late answer is dropped by the core.
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
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from pbx_codes.adapters.reconnect import BackoffPolicy, ReconnectingClient
from pbx_codes.errors import AuthenticationError, PbxCodesError, PbxConnectionError
from pbx_codes.protocols import StateError
from pbx_codes.protocols.ami import AmiConnection, AmiState, Banner, Event, FilterRefused, Reply, Response, StateChanged
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


class AmiClient(ReconnectingClient):
    """One AMI connection, kept up by `run` until `close`. `on_event` is called for each decoded event."""

    kind = "AMI"
    unreachable = AmiUnreachable

    def __init__(self, settings: AmiSettings, secret: str, on_event: Callable[[Event], None], *,
                 on_connected: Callable[[], None] | None = None, rng: random.Random | None = None,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(settings.host, settings.port, settings.backoff, logger=log,
                         connect_timeout=settings.connect_timeout, sleep=sleep, rng=rng, clock=clock)
        self.settings = settings
        self._secret = secret
        self._on_event = on_event
        self._on_connected = on_connected
        self._conn: AmiConnection | None = None
        self._waiters: dict[str, asyncio.Future[Response]] = {}
        self._progress = asyncio.Event()  # a handshake step was answered
        self._refusal = ""  # the server's words for a refused login
        self.banner: str | None = None

    def __repr__(self) -> str:  # the secret must never show up in a log line or a traceback
        return f"AmiClient({self.settings.host}:{self.settings.port}, user={self.settings.username!r})"

    # -- public -------------------------------------------------------------------------------------------------
    async def send_action(self, name: str, /, timeout: float | None = None, **headers: object) -> Response:
        """Send one action and return its response (raises `AmiNotConnected`, or TimeoutError on no answer)."""
        conn, protocol = self._conn, self._protocol
        if conn is None or protocol is None or conn.state is not AmiState.SUBSCRIBED:
            raise AmiNotConnected(f"not connected, cannot send {name}")
        try:
            action_id = conn.send_action(name, **headers)
        except StateError as exc:
            raise AmiNotConnected(f"cannot send {name}: {exc}") from None
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._waiters[action_id] = future
        protocol.write(conn.data_to_send())
        try:
            return await within(future, timeout or self.settings.action_timeout)
        finally:
            if self._waiters.pop(action_id, None) is not None:
                conn.abandon(action_id)  # no answer yet: the core drops it when it comes

    async def close(self) -> None:
        """Stop `run` and drop the connection (with a Logoff, if one is up)."""
        conn, protocol = self._conn, self._protocol
        if conn is not None and protocol is not None:
            protocol.write(conn.logoff())
        await super().close()

    # -- one session --------------------------------------------------------------------------------------------
    async def _session(self) -> None:
        s = self.settings
        conn = self._conn = AmiConnection(s.username, self._secret, events=s.events, filters=s.filters,
                                          wanted_events=s.wanted_events)
        protocol = await self._connect(self._received)
        conn.start()
        protocol.write(conn.data_to_send())
        await self._until(lambda: conn.state in (AmiState.SUBSCRIBED, AmiState.REFUSED), self._progress, protocol,
                          s.action_timeout, lambda: conn.awaiting)
        if conn.state is AmiState.REFUSED:
            raise AmiAuthError(f"AMI login as {s.username!r} refused: {self._refusal}")
        self._up(f"logged in as {s.username!r}")
        if self._on_connected is not None:
            self._on_connected()
        pinger: asyncio.Future[object] = asyncio.ensure_future(self._watchdog())
        ended: asyncio.Future[object] = protocol.ended  # type: ignore[assignment]
        try:
            await asyncio.wait({pinger, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            pinger.cancel()
        if pinger.done() and not pinger.cancelled():
            pinger.result()  # re-raise what ended the session
        self._raise_ended(protocol)

    def _handshake_timeout(self, what: str, timeout: float) -> Exception:
        return AmiError(f"no answer to {what} within {timeout:g} s")

    def _received(self, data: bytes) -> bytes | None:
        conn = self._conn
        assert conn is not None
        self.last_traffic_at = self._clock()
        for item in conn.receive_data(data):
            if isinstance(item, Event):
                try:
                    self._on_event(item)
                except Exception:  # a bug in a consumer must not kill the connection
                    log.exception("AMI event handler failed on %s", item.name)
            elif isinstance(item, Reply):
                future = self._waiters.pop(item.action_id, None)
                if future is not None and not future.done():
                    future.set_result(item.response)
            elif isinstance(item, StateChanged):
                self._refusal = item.reason
                self._progress.set()
            elif isinstance(item, FilterRefused):
                log.warning("AMI filter %r refused: %s", item.expression, item.message)
                self._progress.set()
            elif isinstance(item, Banner):
                self.banner = item.version
        if conn.carried:
            self._carried = True
        return conn.data_to_send()

    async def _watchdog(self) -> None:
        s = self.settings
        while True:
            await asyncio.sleep(s.ping_interval)
            try:
                await self.send_action("Ping", timeout=s.ping_timeout)
            except TimeoutError:
                raise AmiError(f"no answer to Ping within {s.ping_timeout}s: dropping the connection") from None

    def _drop(self, reason: BaseException) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and conn.state is not AmiState.CLOSED:
            conn.close()
        waiters, self._waiters = self._waiters, {}
        for future in waiters.values():
            if not future.done():
                future.set_exception(AmiNotConnected("AMI connection lost before the answer"))


__all__ = ["AmiAuthError", "AmiClient", "AmiError", "AmiNotConnected", "AmiSettings", "AmiUnreachable",
           "filters_for"]
