"""The one reconnect policy of the PBX clients (AMI and ESL): quick after an outage, patient with a refused login.

What ended the last attempt decides the wait before the next one:

- **unreachable** (the TCP connect was refused, timed out, had no route): try again every `probe_interval`
  (about half a second), however long the outage lasts. A refused connect costs the PBX nothing (the kernel
  answers it), so this is the cheap probe that gets a listener back within about a second of the PBX listening
  again; the failure count is left as it was.
- **refused** (the PBX answered and refused the login or the password): wait at least `refused_minimum` (a
  minute): the secret is wrong and a tight loop would only fill the PBX's log, or get us banned.
- **failed** (the PBX accepted the login, then sent garbage or closed at once): the wait grows exponentially up
  to `maximum`, so a broken or hostile server is not hammered.
- **ended** (a session that worked, then ended without a protocol error: the PBX restarted, the network dropped):
  the failure count starts over, and the first retry comes after `initial`. A session worked when it carried
  well-formed traffic after the login, or stayed up `stable_after` seconds (a quiet PBX sends nothing for a while;
  a broken one breaks at once).

Every wait has +/- `jitter` so a fleet of listeners does not reconnect in step.

`ReconnectingClient` is the one client shape AMI and ESL share: the loop above, one "missed window" log line (and
list) per gap in the event stream, one `PartStatus` for ``/metrics`` and the console, and `ClientProtocol`, the
one asyncio style (a `Protocol`: one callback per read, no extra buffering) that moves bytes into a sans-IO core.
A client says only how one session goes (`_session`); everything about time between sessions lives here.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pbx_codes import status as states
from pbx_codes.errors import AuthenticationError, PbxCodesError, PbxConnectionError, ProtocolError
from pbx_codes.status import PartStatus, describe_error
from pbx_codes.timeouts import within


class Ending(Enum):
    """How one connection attempt ended, as far as the backoff cares."""

    UNREACHABLE = "unreachable"
    REFUSED = "refused"
    FAILED = "failed"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    initial: float = 0.5
    maximum: float = 30.0
    jitter: float = 0.2  # +/- fraction of every wait
    probe_interval: float = 0.5
    refused_minimum: float = 60.0
    stable_after: float = 5.0

    def __post_init__(self) -> None:
        for name in ("initial", "maximum", "probe_interval", "refused_minimum", "stable_after"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"backoff {name} must be a number >= 0, got {value!r}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"backoff jitter must be in [0, 1), got {self.jitter!r}")

    def exponential(self, failures: int) -> float:
        """The un-jittered wait after `failures` consecutive failures (0: the first)."""
        return float(min(self.maximum, self.initial * (2 ** min(failures, 30))))


class Backoff:
    """The state between attempts: how many failed in a row, and the wait the last ending asks for."""

    def __init__(self, policy: BackoffPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self.failures = 0
        self._rng = rng or random.Random()

    def after(self, ending: Ending) -> float:
        """Seconds to wait before the next attempt, given how this one ended."""
        p = self.policy
        if ending is Ending.UNREACHABLE:
            return self._jittered(p.probe_interval)
        if ending is Ending.ENDED:
            self.failures = 0
            return self._jittered(p.initial)
        wait = p.exponential(self.failures)
        self.failures += 1
        if ending is Ending.REFUSED:  # never below the minimum: jitter only lengthens this wait
            return max(wait, p.refused_minimum) * (1.0 + p.jitter * self._rng.uniform(0.0, 1.0))
        return self._jittered(wait)

    def _jittered(self, wait: float) -> float:
        return max(0.0, wait * (1.0 + self.policy.jitter * self._rng.uniform(-1.0, 1.0)))


class ClientProtocol(asyncio.Protocol):
    """Moves bytes between a socket and a sans-IO core: each read goes to `on_data` (which returns bytes to write
    back, if any); `ended` resolves with the exception that ended the connection (None for a clean EOF)."""

    def __init__(self, on_data: Callable[[bytes], bytes | None]) -> None:
        self.on_data = on_data
        self.transport: asyncio.Transport | None = None
        self.ended: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        self.last_read = 0.0  # loop time of the last read (the watchdogs' clock)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.last_read = asyncio.get_running_loop().time()

    def data_received(self, data: bytes) -> None:
        if self.ended.done():
            return
        self.last_read = asyncio.get_running_loop().time()
        try:
            reply = self.on_data(data)
        except BaseException as exc:  # a protocol error (or a bug) ends this connection, never the loop
            self.fail(exc)
            return
        if reply:
            self.write(reply)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def fail(self, exc: BaseException | None, *, abort: bool = True) -> None:
        """End the connection with `exc` as the reason (the first reason wins); `abort` drops unsent bytes."""
        if not self.ended.done():
            self.ended.set_result(exc)
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()

    def eof_received(self) -> bool | None:
        if not self.ended.done():
            self.ended.set_result(None)
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ended.done():
            self.ended.set_result(exc)


class ReconnectingClient:
    """A client kept up by `run` until `close` (or cancellation), with one backoff, one missed-window log and one
    `PartStatus`. Subclasses implement `_session` (connect with `_connect`, then serve; return or raise when it
    ends) and `_drop` (fail whatever waits on the connection); they call `_up` once the session carries events."""

    #: Names the PBX in log lines and in the status ("AMI", "ESL").
    kind = "PBX"
    #: The exception a failed TCP connect becomes.
    unreachable: type[Exception] = PbxConnectionError

    def __init__(self, host: str, port: int, policy: BackoffPolicy, *, logger: logging.Logger,
                 connect_timeout: float, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.time) -> None:
        self.host, self.port = host, port
        self.policy = policy
        self.log = logger
        self.connect_timeout = connect_timeout
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock = clock
        self.status = PartStatus(f"{self.kind} {host}:{port}", logger=logger)
        self.connected = asyncio.Event()  # set while a session is up (subscribed)
        self.connections = 0  # sessions that came up
        self.attempts = 0  # connection attempts
        self.last_error: BaseException | None = None
        self.last_traffic_at: float | None = None  # wall-clock time of the last read (the start of a gap)
        self.disconnected_at: float | None = None  # start of the current gap in the event stream, if any
        self.missed_windows: list[tuple[float, float]] = []  # (wall-clock start, end) of each gap
        self._closing = False
        self._protocol: ClientProtocol | None = None
        self._tcp = False  # this attempt got a TCP connection
        self._carried = False  # this session carried well-formed traffic after the login
        self._up_since: float | None = None  # monotonic time this session came up

    async def run(self) -> None:
        """Connect and serve until `close`, reconnecting after any failure (a refused login included)."""
        backoff = Backoff(self.policy, self._rng)
        while not self._closing:
            self._tcp = self._carried = False
            self._up_since = None
            unexpected = False
            try:
                await self._session()
                err: BaseException = PbxConnectionError(f"connection closed by the {self.kind} server")
            except (TimeoutError, OSError, EOFError, PbxCodesError) as exc:
                err = exc
            except Exception as exc:  # a bug must not end the listener: say so, back off, try again
                self.log.exception("%s %s:%s: session failed", self.kind, self.host, self.port)
                err, unexpected = exc, True
            finally:
                self._end_session()
            self.last_error = err
            if self.closing:  # close() ran while the session was up
                break
            ending = self._ending(err, unexpected)
            delay = backoff.after(ending)
            if ending is Ending.REFUSED:
                self.status.refusals += 1
            if ending is not Ending.ENDED:
                self.status.failures += 1
            self.status.set(_STATE[ending], self._reason(ending, err, delay))
            self.log.debug("%s reconnect to %s:%s in %.2f s (%s)", self.kind, self.host, self.port, delay,
                           describe_error(err))
            await self._sleep(delay)

    @property
    def closing(self) -> bool:
        return self._closing

    async def close(self) -> None:
        """Stop `run` and drop the connection."""
        self._closing = True
        self._end_session()

    def cut(self) -> None:
        """Drop the current connection at once, as a network fault would (fault runs); `run` reconnects."""
        protocol = self._protocol
        if protocol is not None:
            protocol.fail(PbxConnectionError(f"{self.kind} connection cut"))

    def report(self) -> dict[str, Any]:
        """The connection's state for /metrics and the console: the status, the counters and the gaps."""
        missed = sum(end - start for start, end in self.missed_windows)
        return {**self.status.snapshot(), "connected": self.connected.is_set(), "connections": self.connections,
                "attempts": self.attempts, "missed_windows": len(self.missed_windows), "missed_seconds": missed}

    # -- for subclasses -----------------------------------------------------------------------------------------
    async def _session(self) -> None:
        raise NotImplementedError

    def _drop(self, reason: BaseException) -> None:
        """Fail whatever waits on the session that ended (override)."""

    async def _connect(self, on_data: Callable[[bytes], bytes | None]) -> ClientProtocol:
        """One TCP connection whose reads go to `on_data`; a failure is `unreachable`."""
        self.attempts += 1
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await within(loop.create_connection(lambda: ClientProtocol(on_data), self.host, self.port),
                                       self.connect_timeout)
        except TimeoutError:
            raise self.unreachable(f"no TCP connection within {self.connect_timeout:g} s") from None
        except OSError as exc:
            raise self.unreachable(describe_error(exc, "connect")) from None
        self._tcp = True
        self._protocol = protocol
        return protocol

    async def _until(self, done: Callable[[], bool], progress: asyncio.Event, protocol: ClientProtocol,
                     timeout: float, what: Callable[[], str | None]) -> None:
        """Wait until `done()`, each step (a `progress` signal) within `timeout`; the connection ending ends the
        wait with its reason; a step that does not come names `what()` was awaited."""
        while not done():
            progress.clear()
            waiter: asyncio.Future[object] = asyncio.ensure_future(progress.wait())
            ended: asyncio.Future[object] = protocol.ended  # type: ignore[assignment]
            try:
                finished, _ = await asyncio.wait({waiter, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
            if ended in finished and not done():  # the answer and the close may come in one read
                self._raise_ended(protocol)
            if not finished:
                raise self._handshake_timeout(what() or "answer", timeout)

    def _handshake_timeout(self, what: str, timeout: float) -> Exception:
        return PbxConnectionError(f"no {what} within {timeout:g} s")

    def _raise_ended(self, protocol: ClientProtocol) -> None:
        exc = protocol.ended.result()
        if exc is None:
            raise EOFError(f"{self.kind} connection closed by the server")
        raise exc

    def _up(self, reason: str) -> None:
        """The session carries the event stream: count it, log the gap it closes, report it up."""
        self.connections += 1
        now = self._clock()
        if self.disconnected_at is not None:
            start, self.disconnected_at = self.disconnected_at, None
            self.missed_windows.append((start, now))
            self.log.warning("%s %s:%s reconnected; events between %s and %s (%.1f s) were missed while "
                             "disconnected", self.kind, self.host, self.port, _stamp(start), _stamp(now),
                             max(0.0, now - start))
        self.status.set(states.UP, reason)
        self._up_since = time.monotonic()
        self.connected.set()

    # -- internals ----------------------------------------------------------------------------------------------
    def _end_session(self) -> None:
        was_up = self.connected.is_set()
        self.connected.clear()
        if was_up or self.disconnected_at is None:  # a gap starts at the last thing heard (or now)
            self.disconnected_at = (self.last_traffic_at if was_up and self.last_traffic_at else None) or self._clock()
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.fail(None, abort=False)  # a Logoff written just before still goes out
        self._drop(PbxConnectionError(f"{self.kind} connection lost before the answer"))

    def _ending(self, err: BaseException, unexpected: bool) -> Ending:
        if isinstance(err, AuthenticationError):
            return Ending.REFUSED
        if not self._tcp:
            return Ending.UNREACHABLE
        stable = self._up_since is not None and time.monotonic() - self._up_since >= self.policy.stable_after
        if (self._carried or stable) and not unexpected and not isinstance(err, ProtocolError):
            return Ending.ENDED
        return Ending.FAILED

    def _reason(self, ending: Ending, err: BaseException, delay: float) -> str:
        if ending is Ending.REFUSED:
            return f"{describe_error(err)}; not retrying for {delay:.0f} s: fix the secret"
        since = _stamp(self.disconnected_at) if self.disconnected_at is not None else "?"
        return (f"{describe_error(err)}; events since {since} are not being observed; "
                f"reconnecting in {delay:.1f} s")


_STATE = {Ending.REFUSED: states.REFUSED, Ending.FAILED: states.FAILING, Ending.UNREACHABLE: states.UNREACHABLE,
          Ending.ENDED: states.UNREACHABLE}


def _stamp(wall: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(wall)) + f".{int(wall % 1 * 1000):03d}"


__all__ = ["Backoff", "BackoffPolicy", "ClientProtocol", "Ending", "ReconnectingClient"]
