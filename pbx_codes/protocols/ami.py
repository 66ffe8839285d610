"""The Asterisk Manager Interface (AMI) wire protocol, sans-IO: bytes in, `Banner`/`Response`/`Event` out.

Every rule of the protocol as this project meets it, in one place:

- On connect the server sends one banner line, ``Asterisk Call Manager/<version>``, with no blank line after it.
- Then every message is a *frame*: ``Key: Value`` lines ended by a blank line. Asterisk uses CRLF; bare LF (hand
  written input, some proxies) is accepted too. The first line ending of the stream decides which one a connection
  uses, so the frame splitter stays one ``bytes.find`` per frame.
- A frame whose first header is ``Event:`` is an event; ``Response:`` is the answer to an action, matched by
  ``ActionID``. ``Response: Follows`` (the old ``Command`` output) carries a free-text body that may contain blank
  lines and ends with ``--END COMMAND--``; newer servers answer ``Command`` with repeated ``Output:`` headers.
- Events arrive at thousands per second on a busy server and most are noise (``Newexten``, ``VarSet``) to a
  listener, so the parser peeks at the event name in the raw bytes and decodes only the frames it was asked for;
  the rest are counted in `AmiParser.skipped`.
- Bytes are buffered until a frame is complete and decoded per frame (UTF-8, invalid bytes replaced), so a
  character split across two reads survives. A line over `MAX_LINE`, a frame over `MAX_FRAME` or command output
  over `MAX_COMMAND_OUTPUT` raises `ProtocolError`: the buffer never grows without bound.
- `AmiConnection` owns one connection's state (`AmiState`, `AMI_TRANSITIONS`): it sends Login, then the filters,
  matches each answer to its action by ``ActionID`` (a late answer to an abandoned action is dropped) and bounds
  the actions outstanding. The adapter only moves its bytes and keeps time.
- Actions are built by `build_action` only, which refuses CR, LF and NUL anywhere: a value cannot start a header
  or end the frame. Values derived from network text go through `safe_value` first.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from pbx_codes.errors import InjectionError
from pbx_codes.protocols import ProtocolError, StateError, safe_value

MAX_LINE = 8 * 1024
MAX_FRAME = 64 * 1024
#: A ``Response: Follows`` body is command output (``core show ...``) and may be legitimately larger than a frame.
MAX_COMMAND_OUTPUT = 1024 * 1024

BANNER_PREFIX = b"Asterisk Call Manager/"
END_COMMAND = b"--END COMMAND--"

# One header line: key up to the first colon, one optional space, value to the end of the line (CR dropped).
# findall over a whole decoded frame runs in C, far cheaper than a Python loop over its lines.
_HEADER = re.compile(r"^([^:\r\n]+): ?([^\r\n]*)", re.M)
# Headers that open a ``Response: Follows`` frame before its free-text body starts.
_FOLLOWS_HEADERS = frozenset({"Response", "Privilege", "ActionID", "Message"})


def header_needle(key: str) -> str:
    """What `header_value` searches for `key`: made once per key by a reader that takes the same headers of
    thousands of frames, not once per read."""
    return f"\n{key}:"


def header_value(raw: str, needle: str) -> str | None:
    """The (first) value of the header `needle` (from `header_needle`) names in one frame's text, None if absent:
    `Event.get` without the method call and the search string made per read (the Asterisk observer reads about
    twenty headers per dialed leg). A value is the rest of its line after one optional space, less the CR of a
    CRLF ending; a key that starts the frame (no line ending before it) counts when it occurs nowhere else."""
    start = raw.find(needle)
    if start != -1:
        start += len(needle)
        stop = raw.find("\r\n", start)
        value = raw[start:stop] if stop != -1 else raw[start:]
        # The usual line: CRLF-ended (or the frame's last, unterminated); anything else takes the general rule.
        if "\n" not in value and (stop != -1 or not value.endswith("\r")):
            return value[1:] if value[:1] == " " else value
    elif raw.startswith(needle[1:]):
        start = len(needle) - 1
    else:
        return None
    if raw[start:start + 1] == " ":
        start += 1
    stop = raw.find("\n", start)
    if stop == -1:
        return raw[start:-1] if raw.endswith("\r") else raw[start:]
    return raw[start:stop - 1] if raw[stop - 1] == "\r" else raw[start:stop]


@dataclass(frozen=True, slots=True)
class Banner:
    """The first line of a connection: proves we talk to an AMI server and names its protocol version."""

    version: str


class Event:
    """An unsolicited message, parsed lazily: `get` reads one header straight from the frame text.

    Not a dataclass on purpose: a listener reads five or six headers of a twenty-line frame, so building the whole
    header dict up front would be most of the parse cost. `headers` builds (and keeps) it on first use. A repeated
    key (``ChanVariable``, ``State`` in ``TestEvent``) answers its first value in `get`, all of them in `values`.
    Treat instances as immutable.
    """

    __slots__ = ("name", "raw", "_headers")

    def __init__(self, name: str, raw: str) -> None:
        self.name = name
        self.raw = raw
        self._headers: dict[str, str] | None = None

    def get(self, key: str, default: str | None = None) -> str | None:
        """One header's (first) value, without parsing the rest of the frame."""
        value = header_value(self.raw, f"\n{key}:")
        return default if value is None else value

    @property
    def headers(self) -> Mapping[str, str]:
        """Every header, first value of a repeated key winning (as in `get`)."""
        if self._headers is None:
            headers: dict[str, str] = {}
            for key, value in _HEADER.findall(self.raw):
                headers.setdefault(key, value)
            self._headers = headers
        return self._headers

    def values(self, key: str) -> list[str]:
        """Every value of a key that may repeat, in order."""
        return [v for k, v in _HEADER.findall(self.raw) if k == key]

    @property
    def action_id(self) -> str | None:
        """Set on events that answer an action (``OriginateResponse``, list entries)."""
        return self.get("ActionID")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and other.name == self.name and other.raw == self.raw

    def __hash__(self) -> int:
        return hash((self.name, self.raw))

    def __repr__(self) -> str:
        return f"Event({self.name!r}, {len(self.raw)} chars)"


@dataclass(frozen=True, slots=True)
class Response:
    """The answer to one action. `output` holds command output (``Follows`` body or ``Output:`` headers)."""

    status: str
    action_id: str | None
    headers: Mapping[str, str]
    output: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Success, Follows (command output) and Goodbye (logoff) are answers that did what was asked."""
        return self.status in ("Success", "Follows", "Goodbye")

    @property
    def message(self) -> str | None:
        return self.headers.get("Message")

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.headers.get(key, default)


Message = Banner | Event | Response


#: Bytes re-searched at the end of an incomplete buffer: a separator or END COMMAND marker may straddle reads.
_RESCAN = 16


class AmiParser:
    """Incremental AMI reader: `feed` bytes as they arrive, get the complete messages they finish.

    `wanted_events` (exact, case-sensitive event names) limits which events are decoded; ``None`` decodes all.
    Responses are always decoded: they answer our own actions.
    """

    __slots__ = ("_buf", "_sep", "_wanted", "_wanted_text", "_expect_banner", "max_line", "max_frame", "max_output",
                 "skipped",
                 "unknown", "frames", "_scan")

    def __init__(self, wanted_events: Iterable[str] | None = None, *, max_line: int = MAX_LINE,
                 max_frame: int = MAX_FRAME, max_output: int = MAX_COMMAND_OUTPUT) -> None:
        self._buf = bytearray()
        self._sep: bytes | None = None  # b"\r\n\r\n" or b"\n\n", decided by the first line ending seen
        self._wanted = None if wanted_events is None else frozenset(n.encode() for n in wanted_events)
        self._wanted_text = None if wanted_events is None else frozenset(wanted_events)
        self._expect_banner = True
        self.max_line = max_line
        self.max_frame = max_frame
        self.max_output = max_output
        # Where the search for the incomplete frame's end resumes: bytes before it were searched already, so a
        # peer that drips a frame in tiny reads costs linear, not quadratic, time.
        self._scan = 0
        self.skipped = 0  # event frames not decoded because nobody wanted them
        self.unknown = 0  # frames that were neither an event nor a response
        self.frames = 0  # complete frames seen, decoded or not

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame (bounded by `max_frame`)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Message]:
        """Add bytes from the connection; return the messages they complete, in order."""
        buf = self._buf
        buf += data
        out: list[Message] = []
        pos = 0
        if self._sep is None:
            nl = buf.find(b"\n")
            if nl == -1:
                self._check_partial(0)
                return out
            self._sep = b"\r\n\r\n" if nl > 0 and buf[nl - 1] == 13 else b"\n\n"
        if self._expect_banner:
            nl = buf.find(b"\n")
            if nl == -1:
                self._check_partial(0)
                return out
            self._expect_banner = False
            if buf.startswith(BANNER_PREFIX):
                line = bytes(buf[:nl]).rstrip(b"\r").decode("utf-8", errors="replace")
                out.append(Banner(line[len(BANNER_PREFIX):].strip()))
                pos = nl + 1
        sep = self._sep
        seplen = len(sep)
        wanted = self._wanted
        end_of_buf = len(buf)
        hint, self._scan = self._scan, 0
        # The usual read: whole frames of ASCII text. Decoding them in one go and splitting the text in C costs a
        # third less than the loop below; the loop still takes the incomplete frame at the end, command output
        # (from its first frame on: its body may hold blank lines) and every read that is not ASCII.
        last = buf.rfind(sep, pos)
        if last != -1:
            block = buf[pos:last + seplen]
            if block.isascii():
                taken = self._feed_text(block.decode("ascii"), out)
                if taken:  # else command output comes first: the hint may point into it
                    pos, hint = pos + taken, 0
        while pos < end_of_buf:
            # Stray line endings between frames are harmless: skip them.
            first = buf[pos]
            if first == 13 or first == 10:
                pos += 1
                continue
            end = buf.find(sep, pos if pos >= hint else hint)
            if end == -1:
                resume = max(pos, end_of_buf - _RESCAN)
                if buf.startswith(b"Response: Follows", pos):  # never resume past an END COMMAND already here
                    marker = buf.find(END_COMMAND, max(pos, hint))
                    resume = marker if marker != -1 else resume
                self._scan = resume - pos
                break
            if buf.startswith(b"Event: ", pos):
                self.frames += 1
                if wanted is not None:
                    eol = buf.find(b"\n", pos, end + seplen)
                    name = bytes(buf[pos + 7:eol]).rstrip(b"\r ")
                    if name not in wanted:
                        self.skipped += 1
                        self._check_frame(pos, end)
                        pos = end + seplen
                        continue
                else:
                    eol = buf.find(b"\n", pos, end + seplen)
                    name = bytes(buf[pos + 7:eol]).rstrip(b"\r ")
                self._check_frame(pos, end)
                out.append(Event(name.decode("utf-8", errors="replace"),
                                 buf[pos:end].decode("utf-8", errors="replace")))
                pos = end + seplen
                continue
            if buf.startswith(b"Response: Follows", pos):
                marker = buf.find(END_COMMAND, max(pos, hint))
                if marker == -1:
                    if end_of_buf - pos > self.max_output:
                        raise ProtocolError(f"command output over {self.max_output} bytes without {END_COMMAND!r}")
                    self._scan = max(0, end_of_buf - _RESCAN - pos)
                    break
                if marker - pos > self.max_output:
                    raise ProtocolError(f"command output of {marker - pos} bytes is over {self.max_output} bytes")
                after = buf.find(sep, marker)
                if after == -1:
                    self._scan = marker - pos
                    break  # the rest of the frame is bounded by _check_partial
                self.frames += 1
                out.append(self._follows(buf[pos:marker].decode("utf-8", errors="replace")))
                pos = after + seplen
                continue
            self.frames += 1
            self._check_frame(pos, end)
            text = buf[pos:end].decode("utf-8", errors="replace")
            message = self._other(text)
            if message is not None:
                out.append(message)
            pos = end + seplen
        if pos:
            del buf[:pos]
        self._check_partial(0)
        return out

    def _feed_text(self, text: str, out: list[Message]) -> int:
        """Whole frames of ASCII text, by the same rules as the loop in `feed`, up to the first ``Response:
        Follows`` frame (the loop's to take). Returns how many characters (= bytes) it took."""
        wanted = self._wanted_text
        limit = min(self.max_line, self.max_frame)  # a frame no longer than this cannot break either bound
        append, event = out.append, Event
        frames = skipped = 0
        sep = self._sep.decode()  # type: ignore[union-attr]
        pieces = text.split(sep)
        try:
            for piece in pieces:
                frame = piece
                is_event = frame.startswith("Event: ")
                if not is_event:
                    if not frame:
                        continue
                    if frame[0] == "\r" or frame[0] == "\n":  # stray line endings between frames
                        frame = frame.lstrip("\r\n")
                        if not frame:
                            continue
                    if frame.startswith("Response: Follows"):  # (a piece equal to it would have stopped us first)
                        before = pieces.index(piece)
                        return sum(map(len, pieces[:before])) + before * len(sep)
                    is_event = frame.startswith("Event: ")
                frames += 1
                if is_event:
                    eol = frame.find("\n")
                    name = (frame[7:] if eol == -1 else frame[7:eol]).rstrip("\r ")
                    if wanted is not None and name not in wanted:
                        skipped += 1
                        if len(frame) > limit:
                            self._check_text_frame(frame)
                        continue
                    if len(frame) > limit:
                        self._check_text_frame(frame)
                    append(event(name, frame))
                    continue
                if len(frame) > limit:
                    self._check_text_frame(frame)
                message = self._other(frame)
                if message is not None:
                    append(message)
        finally:
            self.frames += frames
            self.skipped += skipped
        return len(text)

    def _check_text_frame(self, frame: str) -> None:
        """`_check_frame` for an ASCII frame already decoded (one character per byte)."""
        if len(frame) > self.max_frame:
            raise ProtocolError(f"AMI frame of {len(frame)} bytes is over the {self.max_frame} byte limit")
        longest = max(len(line) for line in frame.split("\n"))
        if longest > self.max_line:
            raise ProtocolError(f"AMI line of {longest} bytes is over the {self.max_line} byte limit")

    def _check_frame(self, start: int, end: int) -> None:
        """A complete frame must fit the frame and line bounds (lines only checked when the frame could break them)."""
        size = end - start
        if size > self.max_frame:
            raise ProtocolError(f"AMI frame of {size} bytes is over the {self.max_frame} byte limit")
        if size > self.max_line:
            longest = max(len(line) for line in bytes(self._buf[start:end]).split(b"\n"))
            if longest > self.max_line:
                raise ProtocolError(f"AMI line of {longest} bytes is over the {self.max_line} byte limit")

    def _check_partial(self, start: int) -> None:
        """Refuse to keep buffering an incomplete frame or line that is already over its bound."""
        buf = self._buf
        pending = len(buf) - start
        if pending <= self.max_line:
            return
        if buf.startswith(b"Response: Follows", start):
            # Command output may outgrow a frame, not max_output: without this bound, output whose END COMMAND
            # marker (or the blank line after it) never comes would be buffered for ever.
            if pending > self.max_output + len(END_COMMAND) + len(self._sep or b""):
                raise ProtocolError(f"command output over {self.max_output} bytes and still incomplete")
            return
        if pending > self.max_frame:
            raise ProtocolError(f"AMI frame over the {self.max_frame} byte limit and still incomplete")
        last_nl = buf.rfind(b"\n", start)
        if len(buf) - (last_nl + 1 if last_nl != -1 else start) > self.max_line:
            raise ProtocolError(f"AMI line over the {self.max_line} byte limit")

    def _other(self, text: str) -> Message | None:
        pairs = _HEADER.findall(text)
        headers: dict[str, str] = {}
        outputs: list[str] = []
        for key, value in pairs:
            if key == "Output":
                outputs.append(value)
            headers.setdefault(key, value)
        if "Response" in headers:
            return Response(headers["Response"].strip(), headers.get("ActionID"), headers, tuple(outputs))
        if "Event" in headers:
            # An event whose first line is not Event: (never seen from Asterisk, but legal).
            return Event(headers["Event"].strip(), text)
        self.unknown += 1
        return None

    @staticmethod
    def _follows(text: str) -> Response:
        headers: dict[str, str] = {}
        lines = text.replace("\r\n", "\n").split("\n")
        body_start = 0
        for body_start, line in enumerate(lines):  # noqa: B007 - read after the loop: where the body starts
            key, colon, value = line.partition(":")
            if not colon or key not in _FOLLOWS_HEADERS:
                break
            headers.setdefault(key, value.strip())
        else:
            body_start = len(lines)
        body = lines[body_start:]
        while body and body[-1] == "":
            body.pop()
        return Response("Follows", headers.get("ActionID"), headers, tuple(body))


def _check_token(what: str, text: str) -> str:
    # The text itself is not quoted in the error: it may be the Login secret.
    if "\r" in text or "\n" in text or "\x00" in text:
        raise InjectionError(f"AMI {what} contains CR, LF or NUL")
    return text


def build_action(name: str, /, **headers: object) -> bytes:
    """The bytes of one AMI action frame. The only way this project writes to AMI.

    Each keyword becomes a header (``Variable="CDR(x)"``); a list or tuple value repeats the header (``Originate``
    variables); ``None`` leaves it out. Any CR, LF or NUL in a name or value raises ValueError: nothing a caller
    passes can add a header or end the frame early. Network text must be cleaned with `safe_value` first.
    """
    _check_token("action name", name)
    if not name or ":" in name:
        raise ValueError(f"AMI action name is empty or has a colon: {name!r}")
    parts = [f"Action: {name.strip()}\r\n"]
    for key, value in headers.items():
        _check_token("header name", key)
        if not key or ":" in key or key != key.strip():
            raise ValueError(f"AMI header name is empty, padded or has a colon: {key!r}")
        if value is None:
            continue
        values = value if isinstance(value, (list, tuple)) else (value,)
        for item in values:
            text = _check_token(f"value of {key}", str(item))
            parts.append(f"{key}: {text}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("utf-8")


# --- the connection ----------------------------------------------------------------------------------------------

class AmiState(Enum):
    """Where one AMI connection is. Only `SUBSCRIBED` carries the event stream that was asked for."""

    CONNECTED = "connected"  # the transport is up, nothing sent yet (the banner may or may not have come)
    LOGGING_IN = "logging in"  # Login sent, its answer awaited
    AUTHENTICATED = "authenticated"  # the login was accepted; the server-side filters are being added
    SUBSCRIBED = "subscribed"  # every filter answered: events flow, actions may be sent
    REFUSED = "refused"  # the login was refused: nothing is left to do on this connection
    CLOSED = "closed"  # ended (by us, by the peer, or by a protocol error)


#: (state, step) -> next state. A step not in the table is refused with `StateError`; ``close`` is always allowed.
AMI_TRANSITIONS: Mapping[tuple[AmiState, str], AmiState] = {
    (AmiState.CONNECTED, "login"): AmiState.LOGGING_IN,
    (AmiState.LOGGING_IN, "accepted"): AmiState.AUTHENTICATED,
    (AmiState.LOGGING_IN, "refused"): AmiState.REFUSED,
    (AmiState.AUTHENTICATED, "filtered"): AmiState.SUBSCRIBED,
}

#: Actions awaiting their answer at once on one connection; more is a caller that never waits (a leak).
MAX_PENDING = 1024


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to an action sent through `AmiConnection.send_action`, matched by its ActionID."""

    action_id: str
    action: str
    response: Response


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The connection moved on: `reason` says why (the server's message for a refused login or filter)."""

    state: AmiState
    reason: str = ""


@dataclass(frozen=True, slots=True)
class FilterRefused:
    """A server-side filter the server would not add: events it would have stopped will come (and be skipped)."""

    expression: str
    message: str


class AmiConnection:
    """One AMI connection's state, h11-style: `receive_data` takes bytes and returns what they mean (`Banner`,
    `Event`, `Reply`, `StateChanged`, `FilterRefused`); what must be written is taken from `data_to_send`.

    The handshake is driven here: `start` queues ``Login``; its accepted answer queues one ``Filter`` per
    expression; the last filter's answer moves the connection to `SUBSCRIBED`. Every action carries an ActionID the
    connection chose and awaits in `pending`; a caller that gives up calls `abandon`, and the late answer is
    dropped (counted in `late`), never handed to another action.
    """

    __slots__ = ("state", "banner", "parser", "username", "_secret", "events", "filters", "max_pending", "_out",
                 "_pending", "_abandoned", "_handshake", "_next_id", "_prefix", "late", "unmatched", "carried")

    def __init__(self, username: str, secret: str, *, events: str = "on", filters: Iterable[str] = (),
                 wanted_events: Iterable[str] | None = None, max_pending: int = MAX_PENDING,
                 id_prefix: str = "pbxc-", parser: AmiParser | None = None) -> None:
        self.state = AmiState.CONNECTED
        self.banner: str | None = None
        self.parser = parser if parser is not None else AmiParser(wanted_events)
        self.username = username
        self._secret = secret
        self.events = events
        self.filters = tuple(filters)
        self.max_pending = max_pending
        self._out: list[bytes] = []
        self._pending: dict[str, str] = {}  # ActionID -> action name, oldest first
        self._abandoned: set[str] = set()
        self._handshake: dict[str, str] = {}  # ActionID -> "Login" or the filter expression it adds
        self._next_id = 1
        self._prefix = id_prefix
        self.late = 0  # answers to abandoned actions, dropped
        self.unmatched = 0  # answers to no action of ours, dropped
        self.carried = False  # well-formed traffic after the login: an event, or any frame once subscribed

    def __repr__(self) -> str:  # the secret must never show in a log line or a traceback
        return f"AmiConnection({self.state.value}, user={self.username!r}, pending={len(self._pending)})"

    def _step(self, step: str) -> None:
        nxt = AMI_TRANSITIONS.get((self.state, step))
        if nxt is None:
            raise StateError(f"AMI connection {self.state.value}: cannot {step}")
        self.state = nxt

    @property
    def pending(self) -> int:
        """Actions sent and not answered yet (abandoned ones included: their answer will still come)."""
        return len(self._pending)

    @property
    def awaiting(self) -> str | None:
        """The name of the oldest action still unanswered (what a timeout names), None when nothing is."""
        for name in self._pending.values():
            return name
        return None

    def start(self) -> None:
        """The transport is up: log in (the Login goes before the banner: Asterisk reads it after sending one)."""
        self._step("login")
        self._queue("Login", {"Username": self.username, "Secret": self._secret, "Events": self.events},
                    handshake="Login")

    def send_action(self, name: str, /, **headers: object) -> str:
        """Queue one action; returns its ActionID (its `Reply` carries it). Only once subscribed."""
        if self.state is not AmiState.SUBSCRIBED:
            raise StateError(f"AMI connection {self.state.value}: cannot send {name}")
        if len(self._pending) >= self.max_pending:
            raise StateError(f"AMI connection has {len(self._pending)} actions unanswered (bound {self.max_pending})")
        return self._queue(name, headers)

    def abandon(self, action_id: str) -> None:
        """The caller stopped waiting: drop the answer when it comes."""
        if action_id in self._pending:
            self._abandoned.add(action_id)

    def logoff(self) -> bytes:
        """Best-effort ``Logoff`` bytes for a clean close; the connection is closed after it."""
        data = build_action("Logoff", ActionID=f"{self._prefix}{self._next_id}") \
            if self.state in (AmiState.AUTHENTICATED, AmiState.SUBSCRIBED) else b""
        self.close()
        return data

    def close(self) -> list[str]:
        """The connection ended: returns the ActionIDs that will never be answered (their callers are waiting)."""
        self.state = AmiState.CLOSED
        waiting = [a for a in self._pending if a not in self._abandoned and a not in self._handshake]
        self._pending.clear()
        self._abandoned.clear()
        self._handshake.clear()
        self._out.clear()
        return waiting

    def data_to_send(self) -> bytes:
        """Bytes queued since the last call (empty when there is nothing to write)."""
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        return data

    def receive_data(self, data: bytes) -> list[Banner | Event | Reply | StateChanged | FilterRefused]:
        """Bytes from the server -> what they mean, in order. A `ProtocolError` closes the connection."""
        if self.state is AmiState.CLOSED:
            raise StateError("AMI connection closed: no more bytes expected")
        try:
            messages = self.parser.feed(data)
        except ProtocolError:
            self.close()
            raise
        if not messages:
            return []
        out: list[Banner | Event | Reply | StateChanged | FilterRefused] = []
        subscribed = self.state is AmiState.SUBSCRIBED
        for message in messages:
            if isinstance(message, Event):
                self.carried = True
                out.append(message)
            elif isinstance(message, Response):
                if subscribed:
                    self.carried = True
                self._answer(message, out)
                subscribed = self.state is AmiState.SUBSCRIBED
            elif isinstance(message, Banner):
                self.banner = message.version
                out.append(message)
        return out

    def _queue(self, name: str, headers: Mapping[str, object], handshake: str | None = None) -> str:
        action_id = f"{self._prefix}{self._next_id}"
        data = build_action(name, ActionID=action_id, **headers)
        self._next_id += 1
        self._pending[action_id] = name
        if handshake is not None:
            self._handshake[action_id] = handshake
        self._out.append(data)
        return action_id

    def _answer(self, response: Response, out: list[Banner | Event | Reply | StateChanged | FilterRefused]) -> None:
        action_id = response.action_id or ""
        name = self._pending.pop(action_id, None)
        if name is None:
            self.unmatched += 1
            return
        if action_id in self._abandoned:
            self._abandoned.discard(action_id)
            self.late += 1
            return
        step = self._handshake.pop(action_id, None)
        if step is None:
            out.append(Reply(action_id, name, response))
        elif step == "Login":
            if not response.ok:
                self._step("refused")
                out.append(StateChanged(self.state, response.message or response.status))
                return
            self._step("accepted")
            out.append(StateChanged(self.state, f"logged in as {self.username!r}"))
            for expression in self.filters:
                self._queue("Filter", {"Operation": "Add", "Filter": expression}, handshake=expression)
            self._subscribed_if_done(out)
        else:
            if not response.ok:
                out.append(FilterRefused(step, response.message or response.status))
            self._subscribed_if_done(out)

    def _subscribed_if_done(self, out: list[Banner | Event | Reply | StateChanged | FilterRefused]) -> None:
        if self.state is AmiState.AUTHENTICATED and not self._handshake:
            self._step("filtered")
            out.append(StateChanged(self.state, f"logged in as {self.username!r}"))


__all__ = [
    "AMI_TRANSITIONS", "AmiConnection", "AmiParser", "AmiState", "Banner", "END_COMMAND", "Event", "FilterRefused",
    "MAX_FRAME", "MAX_LINE", "MAX_PENDING", "Message", "ProtocolError", "Reply", "Response", "StateChanged",
    "StateError", "build_action", "header_needle", "header_value", "safe_value",
]
