"""A small AMI server on 127.0.0.1 that behaves like Asterisk 22 towards one manager user, for adapter tests.

What it does, and why each piece is there:

- Sends the banner on connect, then reads action frames (``Key: Value`` lines ended by a blank line, CRLF) and
  answers each with the ``ActionID`` it was given, the way manager.c does: ``Login`` (one user, one secret),
  ``Filter`` (kept and applied, as regular expressions searched in the event text, so ``Event: Hangup`` also lets
  ``HangupRequest`` through exactly as Asterisk does), ``Ping``, ``Getvar``, ``Logoff``; anything else is an error.
- `AmiSession.play` streams the frames of a recorded call. Recorded ``Response`` frames are the recording client's
  answers, not events: they are dropped, except that a recorded ``Getvar`` answer marks where the recording client
  had already asked, so the stream waits there (bounded) for our client to ask too. That replaces the seconds of
  dialplan Asterisk ran before hanging up the caller, without putting a clock into the test.
- ``Getvar`` is answered from the live channel state of the played stream: a channel exists from its
  ``Newchannel`` event until its ``Hangup`` event; afterwards Asterisk says ``No such channel``.
- `kill` drops a connection (optionally in the middle of a frame), `stop`/`start` take the port down and up again.
"""
from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from support.paths import FIXTURES as FIXTURES_ROOT

FIXTURES = FIXTURES_ROOT
ASTERISK_FIXTURES = FIXTURES / "asterisk"
BANNER = b"Asterisk Call Manager/11.0.0"
#: Bound on how long `play` waits at a recorded Getvar answer for the client under test to ask.
GETVAR_WAIT = 5.0


@dataclass(frozen=True, slots=True)
class Recording:
    """A recorded AMI connection split into its banner and its frames (events and the recorder's responses)."""

    banner: bytes
    frames: tuple[bytes, ...]

    @property
    def events(self) -> list[bytes]:
        return [f for f in self.frames if f.startswith(b"Event: ")]


def load_recording(name: str) -> Recording:
    """``limit503`` -> the frames of ``limit503.ami.txt``, each with its CRLFCRLF terminator."""
    data = (ASTERISK_FIXTURES / f"{name}.ami.txt").read_bytes()
    banner, _, rest = data.partition(b"\r\n")
    frames = tuple(f + b"\r\n\r\n" for f in rest.split(b"\r\n\r\n") if f.strip())
    return Recording(banner, frames)


def renumber(frames: Iterable[bytes], replacements: Mapping[bytes, bytes]) -> list[bytes]:
    """The same call under other ids and channel names (a second call that is not a replay of the first)."""
    out = []
    for frame in frames:
        for old, new in replacements.items():
            frame = frame.replace(old, new)
        out.append(frame)
    return out


def parse_frame(raw: bytes) -> dict[str, str]:
    """One action frame as a dict (first value of a repeated key wins, as in manager.c's astman_get_header)."""
    headers: dict[str, str] = {}
    for line in raw.decode("utf-8", errors="replace").split("\r\n"):
        key, colon, value = line.partition(":")
        if colon:
            headers.setdefault(key.strip(), value.lstrip(" "))
    return headers


def _header(frame: bytes, key: bytes) -> str | None:
    match = re.search(rb"^" + re.escape(key) + rb": ?([^\r\n]*)", frame, re.M)
    return match.group(1).decode("utf-8", errors="replace") if match else None


@dataclass
class AmiSession:
    """One client connection as the server sees it."""

    server: AmiTestServer
    writer: asyncio.StreamWriter
    actions: list[dict[str, str]] = field(default_factory=list)
    filters: list[str] = field(default_factory=list)
    logged_in: bool = False
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # logged in and the last expected filter added
    _new_action: asyncio.Event = field(default_factory=asyncio.Event)

    def count(self, action: str) -> int:
        return sum(a.get("Action") == action for a in self.actions)

    def send(self, frame: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(frame)

    def passes_filters(self, event: bytes) -> bool:
        """Asterisk's legacy filters: with any include filter, an event must match one; ``!`` filters exclude."""
        text = event.decode("utf-8", errors="replace")
        includes = [f for f in self.filters if not f.startswith("!")]
        excludes = [f[1:] for f in self.filters if f.startswith("!")]
        if includes and not any(re.search(f, text) for f in includes):
            return False
        return not any(re.search(f, text) for f in excludes)

    async def wait_for_action(self, predicate: Callable[[dict[str, str]], bool], limit: float = GETVAR_WAIT
                              ) -> bool:
        """True once an action matching `predicate` has arrived on this connection (False after `limit`)."""
        async def poll() -> None:
            while not any(predicate(a) for a in self.actions):
                self._new_action.clear()
                await self._new_action.wait()
        try:
            await asyncio.wait_for(poll(), limit)
        except TimeoutError:
            return False
        return True

    async def play(self, frames: Iterable[bytes]) -> None:
        """Stream a recorded call: events through the filters, channel state kept, Getvar points awaited."""
        for frame in frames:
            if frame.startswith(b"Response: "):
                variable = _header(frame, b"Variable")
                if variable is not None:
                    await self.wait_for_action(
                        lambda a: a.get("Action") == "Getvar" and a.get("Variable") == variable)  # noqa: B023 - awaited here
                continue
            self.server.track_channels(frame)
            if self.passes_filters(frame):
                self.send(frame)
                await self.writer.drain()

    async def kill(self, partial: bytes = b"") -> None:
        """Drop the connection as a crashing Asterisk would, after `partial` (e.g. half a frame)."""
        if partial:
            self.send(partial)
            await self.writer.drain()
        transport = self.writer.transport
        if not transport.is_closing():
            transport.abort()

    async def serve(self, reader: asyncio.StreamReader) -> None:
        self.send(self.server.banner + b"\r\n")
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                action = parse_frame(raw)
                self.actions.append(action)
                self._new_action.set()
                if not await self.server.answer(self, action):
                    break
                await self.writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            self.writer.close()


class AmiTestServer:
    """The server. `variables` answer Getvar: ``{"HANGUPCAUSE(PJSIP/trunk-00000007,tech)": "SIP 503 ..."}``.

    `ready_after_filter`: a session becomes `ready` when this filter is added (the last of those the client sends),
    or right after login when None. `on_ready(session)` then runs, e.g. to play a call.
    """

    def __init__(self, *, username: str = "pbx-codes", secret: str = "s3cret", banner: bytes = BANNER,
                 variables: Mapping[str, str] | None = None, answer_pings: bool = True,
                 ready_after_filter: str | None = "Event: SoftHangupRequest",
                 on_ready: Callable[[AmiSession], Awaitable[None]] | None = None) -> None:
        self.username = username
        self.secret = secret
        self.banner = banner
        self.variables = dict(variables or {})
        self.answer_pings = answer_pings
        self.ready_after_filter = ready_after_filter
        self.on_ready = on_ready
        self.sessions: list[AmiSession] = []
        self.logins = 0
        self.refused_logins = 0
        self.live_channels: set[str] = set()
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle ----------------------------------------------------------------------------------------------
    async def start(self) -> AmiTestServer:
        """Listen (again) on 127.0.0.1: on a fresh port the first time, on the same port after `stop`."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening and drop every connection: the PBX is down, connects are refused."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for session in self.sessions:
            await session.kill()
        for task in list(self._tasks):
            task.cancel()

    close = stop

    @property
    def connections(self) -> int:
        return len(self.sessions)

    @property
    def actions(self) -> list[dict[str, str]]:
        """Every action of every session, in order of sessions."""
        return [a for s in self.sessions for a in s.actions]

    @property
    def current(self) -> AmiSession:
        return self.sessions[-1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = AmiSession(self, writer)
        self.sessions.append(session)
        await session.serve(reader)

    # -- Asterisk's behaviour -------------------------------------------------------------------------------------
    def track_channels(self, event: bytes) -> None:
        name = _header(event, b"Event")
        channel = _header(event, b"Channel")
        if channel is None:
            return
        if name == "Newchannel":
            self.live_channels.add(channel)
        elif name == "Hangup":
            self.live_channels.discard(channel)

    async def answer(self, session: AmiSession, action: Mapping[str, str]) -> bool:
        """Write the response to one action; False ends the connection."""
        name = action.get("Action", "").lower()
        aid = action.get("ActionID", "")
        head = f"ActionID: {aid}\r\n" if aid else ""

        def respond(status: str, *lines: str) -> None:
            session.send((f"Response: {status}\r\n{head}" + "".join(f"{line}\r\n" for line in lines)
                          + "\r\n").encode("utf-8"))

        if name == "login":
            if action.get("Username") != self.username or action.get("Secret") != self.secret:
                self.refused_logins += 1
                respond("Error", "Message: Authentication failed")
                await session.writer.drain()
                return False
            self.logins += 1
            session.logged_in = True
            respond("Success", "Message: Authentication accepted")
            if self.ready_after_filter is None:
                self._ready(session)
            return True
        if not session.logged_in:
            respond("Error", "Message: Permission denied")
            return True
        if name == "filter":
            expression = action.get("Filter", "")
            try:
                re.compile(expression.lstrip("!"))
            except re.error:
                respond("Error", "Message: Filter Failed")
                return True
            session.filters.append(expression)
            respond("Success", "Message: Filter Added")
            if expression == self.ready_after_filter:
                self._ready(session)
        elif name == "ping":
            if self.answer_pings:
                respond("Success", "Ping: Pong", "Timestamp: 1795422912.000000")
        elif name == "getvar":
            channel = action.get("Channel", "")
            variable = action.get("Variable", "")
            if channel and channel not in self.live_channels:
                respond("Error", "Message: No such channel")
            else:
                respond("Success", f"Variable: {variable}", f"Value: {self.variables.get(variable, '')}")
        elif name == "logoff":
            respond("Goodbye", "Message: Thanks for all the fish.")
            await session.writer.drain()
            return False
        else:
            respond("Error", "Message: Invalid/unknown command")
        return True

    def _ready(self, session: AmiSession) -> None:
        session.ready.set()
        if self.on_ready is not None:
            task = asyncio.ensure_future(self.on_ready(session))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


__all__ = ["AmiSession", "AmiTestServer", "ASTERISK_FIXTURES", "BANNER", "FIXTURES", "Recording",
           "load_recording", "parse_frame", "renumber"]
