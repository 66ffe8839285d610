"""FreeSWITCH Event Socket (ESL), sans-IO: bytes in, typed frames out; commands out as bytes.

No sockets, no asyncio, no clocks: `EslParser.feed()` takes whatever the transport read and returns every frame
that is now complete. Every rule of the wire format lives in this file:

- A frame is a header block (``Name: value`` lines, ended by an empty line, ``\\n\\n``) plus, when the block has a
  ``Content-Length``, exactly that many **bytes** of body. Bytes are buffered and decoded only per complete frame,
  so a UTF-8 character split across two reads survives.
- ``Content-Type`` says what the frame is: ``auth/request``, ``command/reply`` (``Reply-Text: +OK ...``),
  ``api/response`` (body = the API's output), ``text/event-plain`` / ``text/event-json`` / ``text/event-xml``
  (body = one event), ``text/disconnect-notice``, ``log/data``. Anything else is kept as an `UnknownFrame`.
- A plain event's body is itself a header block whose values are URL-encoded (``sip%3A409``); an event such as
  BACKGROUND_JOB carries its own ``Content-Length`` and a body after that block. JSON events are not encoded; their
  body is in ``_body``. XML events are passed raw (nothing here needs them).
- Most events are noise to a listener (CHANNEL_STATE, API, CHANNEL_EXECUTE ...). Frames are split on the raw
  bytes (``find``), and with ``wanted_events`` the parser peeks at the event's name in the undecoded body (the
  first ``Event-Name: `` line of a plain event, the ``"Event-Name":"..."`` member of a JSON one) and decodes only the
  events asked for; the rest are counted in `EslParser.skipped` and never returned. ``None`` decodes every event.
- Limits: a header block over ``max_header_bytes`` (64 KiB) or a ``Content-Length`` over ``max_body_bytes``
  (8 MiB by default) raises `ProtocolError` before anything is buffered further: a broken or hostile peer cannot
  make the reader grow without bound. After a `ProtocolError` the parser is dead (like h11): reconnect.
- `EslConnection` owns one connection's state (`EslState`, `ESL_TRANSITIONS`): auth/request -> ``auth`` ->
  ``event`` -> subscribed, the FIFO that matches replies to commands (an abandoned command keeps its slot), the
  Job-UUIDs of ``bgapi`` jobs, and the bound on commands outstanding.
- Commands are built by `build_command` only, which refuses CR/LF in any argument: a carrier's phrase cannot add a
  line to an ESL command. `sanitize_arg` makes untrusted text fit for an argument.
"""
from __future__ import annotations

import binascii
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from operator import methodcaller
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

from pbx_codes.errors import InjectionError
from pbx_codes.protocols import ProtocolError as SharedProtocolError
from pbx_codes.protocols import StateError
from pbx_codes.text import ESL_ARGUMENT, clean

_json_loads: Callable[[str], Any]
try:  # orjson parses FreeSWITCH's JSON events ~2x faster; the stdlib parser is the fallback
    from orjson import loads as _json_loads
except ImportError:  # pragma: no cover - exercised where orjson is not installed
    _json_loads = json.loads

DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024

_BLOCK_END = b"\n\n"


#: The peer sent bytes that are not ESL (or exceed a limit): the one ProtocolError (`pbx_codes.errors`).
ProtocolError = SharedProtocolError


class CommandInjectionError(InjectionError):
    """An argument of an ESL command contains CR or LF, which would start a new command line."""


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """FreeSWITCH greets every inbound connection with this and waits for ``auth <password>``."""

    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CommandReply:
    """The answer to a command (``auth``, ``event``, ``bgapi`` ...): ``Reply-Text`` starts with ``+OK`` or ``-ERR``."""

    reply_text: str
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.reply_text.startswith("+OK")

    @property
    def job_uuid(self) -> str | None:
        return self.headers.get("Job-UUID")


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """The output of ``api <command>``; FreeSWITCH reports failure only in the text (``-ERR No such channel!``)."""

    body: str
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.body.startswith("-ERR")


@dataclass(frozen=True, slots=True)
class Event:
    """One FreeSWITCH event, decoded: ``headers`` hold the event's fields (plain values already URL-decoded)."""

    name: str
    headers: Mapping[str, Any]
    body: str | None = None
    format: str = "plain"  # plain | json | xml

    def get(self, key: str, default: str | None = None) -> Any:
        return self.headers.get(key, default)


@dataclass(frozen=True, slots=True)
class DisconnectNotice:
    """FreeSWITCH is closing the socket (after ``exit``, or when the listener is shut down)."""

    body: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LogData:
    """A log line (only after the ``log`` command)."""

    body: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UnknownFrame:
    """A well-formed frame of a content type this module does not interpret; kept so nothing is silently lost."""

    content_type: str
    headers: Mapping[str, str]
    body: str | None = None


Frame = AuthRequest | CommandReply | ApiResponse | Event | DisconnectNotice | LogData | UnknownFrame


def _decode(raw: bytes | bytearray) -> str:
    # FreeSWITCH passes caller names and carrier phrases through as it got them; a stray Latin-1 byte must not
    # kill the connection, so undecodable bytes become U+FFFD instead of raising.
    return raw.decode("utf-8", "replace")


_NAME_VALUE = methodcaller("split", ": ", 1)


def _parse_block(text: str, *, url_decoded: bool) -> dict[str, str]:
    """``Name: value`` lines into a dict. Raises ProtocolError on a line without a colon."""
    if not url_decoded:
        # FreeSWITCH always writes "Name: value"; these C-speed forms cover it, the loop below the rest. An empty
        # line makes a one-item split that dict() refuses: the second form skips empty lines, as the loop does.
        try:
            return dict(map(_NAME_VALUE, text.split("\n")))
        except ValueError:
            pass
        try:
            return dict(line.split(": ", 1) for line in text.split("\n") if line)
        except ValueError:
            pass
    headers: dict[str, str] = {}
    for line in text.split("\n"):
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError(f"header line without ':': {line[:80]!r}")
        if value.startswith(" "):
            value = value[1:]
        if url_decoded and "%" in value:
            value = unquote(value)
        headers[name] = value
    return headers


def _content_length(headers: Mapping[str, str], limit: int) -> int:
    raw = headers.get("Content-Length")
    if raw is None:
        return 0
    raw = raw.strip()
    if not raw.isdigit() or not raw.isascii() or len(raw) > 12:  # 12 digits: past any limit, inside int()'s
        raise ProtocolError(f"Content-Length is not a number: {raw[:40]!r}")
    length = int(raw)
    if length > limit:
        raise ProtocolError(f"Content-Length {length} exceeds the limit of {limit} bytes")
    return length


_ENCODED_NL = ("%0A", "%0a", "%0D", "%0d")
_NL, _CR = "\ue000", "\ue001"  # private-use stand-ins for encoded line breaks while the block is decoded at once
_STAND_IN = re.compile(rb"%[Ee][Ee]%80%8")  # an encoded stand-in: only the exact per-line path is safe then
_BAD_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")  # a "%" that is not an escape: unquote keeps it as it is
_LINE_BREAK = re.compile(rb"%0[AaDd]")
# Encoded line breaks, re-encoded as the UTF-8 of their stand-ins before the block is decoded.
_LINE_BREAK_STAND_IN = {b"%0A": b"%EE%80%80", b"%0a": b"%EE%80%80", b"%0D": b"%EE%80%81", b"%0d": b"%EE%80%81"}


def _stand_in(match: re.Match[bytes]) -> bytes:
    return _LINE_BREAK_STAND_IN[match.group()]


def _parse_encoded_block(text: str) -> dict[str, str]:
    """A URL-encoded header block, decoded with one ``unquote`` call instead of one per value.

    Encoded CR/LF inside values are swapped for private-use characters first, so decoding cannot create new lines;
    if the text could already contain those characters, the exact per-line path is used instead."""
    if "%" not in text:
        return _parse_block(text, url_decoded=False)
    if _NL in text or _CR in text or "%EE%80%8" in text.upper():
        return _parse_block(text, url_decoded=True)
    swapped = text
    for enc in _ENCODED_NL:
        if enc in swapped:
            swapped = swapped.replace(enc, _NL if enc[-1] in "Aa" else _CR)
    headers = _parse_block(unquote(swapped), url_decoded=False)
    if swapped is not text:
        _restore_line_breaks(headers)
    return headers


def _restore_line_breaks(headers: dict[str, str]) -> None:
    for name, value in headers.items():
        if _NL in value or _CR in value:
            headers[name] = value.replace(_NL, "\n").replace(_CR, "\r")


def _unescape_ascii(raw: bytes | bytearray) -> tuple[bytes, bool]:
    """``unquote_to_bytes`` of an ASCII block at C speed, with encoded line breaks turned into their stand-ins;
    also says whether any line break was swapped.

    Quoted-printable decoding (``binascii.a2b_qp``) is URL decoding with ``=`` for ``%`` as long as every ``%``
    starts an escape: every ``=`` is escaped as ``=3D`` first, every ``%`` becomes ``=``. A block with a ``%`` that
    is not an escape goes through the standard per-escape loop instead."""
    raw = bytes(raw)
    swapped = False
    if b"%0" in raw:
        raw, swaps = _LINE_BREAK.subn(_stand_in, raw)
        swapped = swaps > 0
    if _BAD_PERCENT.search(raw):
        return unquote_to_bytes(raw), swapped
    quoted = raw.replace(b"=", b"=3D") if b"=" in raw else raw
    return binascii.a2b_qp(quoted.replace(b"%", b"=")), swapped


def _parse_encoded_bytes(raw: bytes | bytearray) -> dict[str, str]:
    """`_parse_encoded_block` of ``raw`` decoded, computed on the bytes when they are ASCII (FreeSWITCH encodes
    every non-ASCII byte, so that is every real event): the same result, several times faster."""
    if b"%" not in raw:
        return _parse_block(_decode(raw), url_decoded=False)
    if not raw.isascii():
        return _parse_encoded_block(_decode(raw))
    if b"%80%8" in raw and _STAND_IN.search(raw):
        return _parse_block(_decode(raw), url_decoded=True)
    unescaped, swapped = _unescape_ascii(raw)
    headers = _parse_block(_decode(unescaped), url_decoded=False)
    if swapped:
        _restore_line_breaks(headers)
    return headers


def parse_plain_event(text: str) -> Event:
    """The body of a ``text/event-plain`` frame: URL-encoded headers, optionally followed by its own body."""
    head, sep, rest = text.partition("\n\n")
    headers = _parse_encoded_block(head)
    body: str | None = None
    if sep and "Content-Length" in headers:
        body = rest
    return Event(name=headers.get("Event-Name", ""), headers=headers, body=body, format="plain")


def _plain_event(raw: bytes | bytearray) -> Event:
    """`parse_plain_event` straight from the frame's bytes (split first, then decoded: "\\n\\n" is ASCII, so the
    result is the same as decoding the whole body first)."""
    cut = raw.find(b"\n\n")
    head = raw if cut < 0 else raw[:cut]
    headers = _parse_encoded_bytes(head)
    body: str | None = None
    if cut >= 0 and "Content-Length" in headers:
        body = _decode(raw[cut + 2:])
    return Event(name=headers.get("Event-Name", ""), headers=headers, body=body, format="plain")


def parse_json_event(text: str) -> Event:
    """The body of a ``text/event-json`` frame: one JSON object; ``_body`` holds the event's own body."""
    try:
        data = _json_loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[..." nested deeper than the C stack
        raise ProtocolError(f"event-json body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError("event-json body is not a JSON object")
    body = data.pop("_body", None)
    name = data.get("Event-Name", "")
    return Event(name=name if isinstance(name, str) else str(name), headers=data,
                 body=body if isinstance(body, str) or body is None else str(body), format="json")


def _xml_event(text: str) -> Event:
    # Tolerated, not interpreted: the observers use plain or JSON. The name is fished out cheaply for routing.
    name = ""
    start = text.find("<Event-Name>")
    if start >= 0:
        end = text.find("</Event-Name>", start)
        if end > start:
            name = text[start + len("<Event-Name>"):end]
    return Event(name=name, headers={}, body=text, format="xml")


_PLAIN, _JSON = "text/event-plain", "text/event-json"
_EVENT_TYPES = frozenset({_PLAIN, _JSON, "text/event-xml"})
_FAST_HEAD = b"Content-Length: "
_FAST_TYPE = b"\nContent-Type: text/event-"


def _frame(headers: Mapping[str, str] | None, body: bytes | bytearray | None, ctype: str) -> Frame:
    if ctype == _PLAIN and body is not None:
        return _plain_event(body)
    text = _decode(body) if body is not None else ""
    if ctype == _PLAIN:
        return parse_plain_event(text)
    if ctype == _JSON:
        return parse_json_event(text)
    if ctype == "text/event-xml":
        return _xml_event(text)
    assert headers is not None  # only event frames come without them
    if ctype == "command/reply":
        return CommandReply(reply_text=headers.get("Reply-Text", ""), headers=headers)
    if ctype == "api/response":
        return ApiResponse(body=text, headers=headers)
    if ctype == "auth/request":
        return AuthRequest(headers=headers)
    if ctype == "text/disconnect-notice":
        return DisconnectNotice(body=text, headers=headers)
    if ctype == "log/data":
        return LogData(body=text, headers=headers)
    return UnknownFrame(content_type=ctype, headers=headers, body=text if body is not None else None)


def _peek_plain_name(buf: bytearray, start: int, stop: int) -> str | None:
    """The first ``Event-Name: `` line of a plain event's header block, from the raw bytes; None when it is not
    there plainly (absent, URL-encoded, not ASCII): then the full parse decides."""
    at = buf.find(b"Event-Name: ", start, stop)
    if at < 0 or (at != start and buf[at - 1] != 0x0A):
        return None
    if at != start and buf.find(b"\n\n", start, at) >= 0:
        return None  # the event's own body, not its headers
    eol = buf.find(b"\n", at, stop)
    raw = buf[at + 12:stop if eol < 0 else eol]
    if b"%" in raw or not raw.isascii():
        return None
    return raw.decode("ascii")


def _peek_json_name(buf: bytearray, start: int, stop: int) -> str | None:
    """The ``"Event-Name":"..."`` member of a JSON event, from the raw bytes; None when it is not there plainly
    (absent, escaped, spaced oddly): then the full parse decides."""
    at = buf.find(b'"Event-Name":', start, stop)
    if at < 0 or (at != start and buf[at - 1] not in b"{, \t\r\n"):
        return None
    pos = at + 13
    while pos < stop and buf[pos] in b" \t\r\n":
        pos += 1
    if pos >= stop or buf[pos] != 0x22:
        return None
    close = buf.find(b'"', pos + 1, stop)
    if close < 0:
        return None
    raw = buf[pos + 1:close]
    if b"\\" in raw or not raw.isascii():
        return None
    return raw.decode("ascii")


class EslParser:
    """Incremental ESL reader: ``feed(bytes) -> list[Frame]``. Keeps at most one incomplete frame buffered.

    ``wanted_events`` (exact event names) limits which events are decoded and returned; ``None`` returns all.
    Replies, API responses and notices are always returned: they answer our own commands. Events left out are
    counted in `skipped`; the decision is taken on the first ``Event-Name`` in the raw event (plain or JSON), or on
    the decoded name when it cannot be read plainly there.
    """

    __slots__ = ("_buf", "_scan_from", "_pending", "_pending_headers", "_pending_type", "_pending_length", "_dead",
                 "_wanted", "max_header_bytes", "max_body_bytes", "skipped")

    def __init__(self, wanted_events: Iterable[str] | None = None, *,
                 max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self._buf = bytearray()
        self._scan_from = 0
        self._pending_headers: Mapping[str, str] | None = None
        self._pending = False
        self._pending_type = ""
        self._pending_length = 0
        self._dead: str | None = None
        self._wanted = None if wanted_events is None else frozenset(wanted_events)
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.skipped = 0  # events not decoded because their name is not in wanted_events

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame (what a disconnect would lose)."""
        return len(self._buf)

    @property
    def wanted_events(self) -> frozenset[str] | None:
        return self._wanted

    def feed(self, data: bytes) -> list[Frame]:
        if self._dead is not None:
            raise ProtocolError(f"parser already failed: {self._dead}")
        if data:
            self._buf += data
        if self._pending and len(self._buf) < self._pending_length:
            return []  # still inside a body: nothing to look at yet
        try:
            return self._drain()
        except ProtocolError as exc:
            self._dead = str(exc)
            raise

    def _head(self, buf: bytearray, pos: int, end: int) -> tuple[Mapping[str, str] | None, str, int]:
        """(headers, Content-Type, Content-Length) of the block ``buf[pos:end]``; headers None for the fast shape.

        FreeSWITCH frames every event as exactly ``Content-Length: N`` + ``Content-Type: text/event-...``: that
        shape is read straight from the bytes; every other block is parsed line by line."""
        if buf.startswith(_FAST_HEAD, pos):
            nl = buf.find(_FAST_TYPE, pos, end)
            if nl > 0 and buf.find(b"\n", nl + 1, end) < 0:
                digits = buf[pos + 16:nl]
                if digits.isdigit() and len(digits) <= 12:
                    length = int(digits)
                    if length > self.max_body_bytes:
                        raise ProtocolError(f"Content-Length {length} exceeds the limit of {self.max_body_bytes} "
                                            "bytes")
                    ctype = buf[nl + 15:end].decode("utf-8", "replace")
                    if ctype in _EVENT_TYPES:
                        return None, ctype, length  # events never look at the frame's own headers
        headers = _parse_block(_decode(buf[pos:end]), url_decoded=False)
        return headers, headers.get("Content-Type", ""), _content_length(headers, self.max_body_bytes)

    def _drain(self) -> list[Frame]:
        out: list[Frame] = []
        buf = self._buf
        wanted = self._wanted
        size = len(buf)
        pos = 0
        while True:
            if not self._pending:
                # Blank lines between frames carry nothing; skip them so the next block starts at a name.
                while pos < size and buf[pos] == 0x0A:
                    pos += 1
                end = buf.find(_BLOCK_END, max(pos, self._scan_from))
                if end < 0:
                    if size - pos > self.max_header_bytes:
                        raise ProtocolError(f"header block exceeds {self.max_header_bytes} bytes")
                    # Next time, resume the search where this one stopped (minus one byte of a split "\n\n").
                    self._scan_from = max(pos, size - 1)
                    break
                if end - pos > self.max_header_bytes:
                    raise ProtocolError(f"header block exceeds {self.max_header_bytes} bytes")
                headers, ctype, length = self._head(buf, pos, end)
                pos = end + 2
                if length == 0:
                    frame = _frame(headers, None, ctype)
                    if wanted is None or not isinstance(frame, Event) or frame.name in wanted:
                        out.append(frame)
                    else:
                        self.skipped += 1
                    continue
                self._pending = True
                self._pending_headers = headers
                self._pending_type = ctype
                self._pending_length = length
            length = self._pending_length
            if size - pos < length:
                break
            headers, self._pending_headers, self._pending = self._pending_headers, None, False
            stop = pos + length
            if wanted is not None:
                ctype = self._pending_type
                name = _peek_plain_name(buf, pos, stop) if ctype == _PLAIN else \
                    _peek_json_name(buf, pos, stop) if ctype == _JSON else None
                if name is not None and name not in wanted:
                    self.skipped += 1
                    pos = stop
                    continue
            frame = _frame(headers, buf[pos:stop], self._pending_type)
            pos = stop
            if wanted is None or not isinstance(frame, Event) or frame.name in wanted:
                out.append(frame)
            else:
                self.skipped += 1
        if pos:
            del buf[:pos]
            self._scan_from = max(0, self._scan_from - pos)
        return out


def parse_stream(data: bytes, *, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> list[Frame]:
    """Every complete frame in a whole capture (a trailing partial frame is ignored)."""
    return EslParser(max_header_bytes=max_header_bytes, max_body_bytes=max_body_bytes).feed(data)


# --- commands ---------------------------------------------------------------------------------------------------

def build_command(*parts: str, headers: Mapping[str, str] | None = None) -> bytes:
    """One ESL command as bytes: ``build_command("api", "uuid_setvar", uuid, name, value)``.

    Every part and header is checked: CR or LF anywhere raises `CommandInjectionError`, because a newline would
    end this command and start another one chosen by whoever wrote the text (a carrier's phrase, a caller name).
    """
    if not parts or not parts[0]:
        raise ValueError("an ESL command needs a verb")
    # Errors name the argument, never quote it: it may be the ``auth`` password.
    for index, part in enumerate(parts):
        if not isinstance(part, str):
            raise TypeError(f"command parts must be str, not {type(part).__name__}")
        if "\n" in part or "\r" in part:
            raise CommandInjectionError(f"CR/LF in argument {index} of an ESL {parts[0][:20]!r} command")
    lines = [" ".join(parts)]
    for name, value in (headers or {}).items():
        for text in (name, value):
            if "\n" in text or "\r" in text or (text is name and ":" in text):
                raise CommandInjectionError(f"invalid ESL command header (name or value of header {name[:60]!r})")
        lines.append(f"{name}: {value}")
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def truncate_utf8(text: str, max_bytes: int) -> str:
    """At most ``max_bytes`` of UTF-8, never cutting a character in half."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    return raw[:max_bytes].decode("utf-8", "ignore")


def sanitize_arg(text: str | None, max_bytes: int = 512) -> str:
    """Untrusted text made safe as one command argument: the ESL profile of `pbx_codes.text` (control and other
    unprintable characters become spaces, runs of spaces collapse, at most ``max_bytes`` of UTF-8)."""
    return clean(text, ESL_ARGUMENT, max_bytes)


# --- the connection ---------------------------------------------------------------------------------------------

class EslState(Enum):
    """Where one inbound ESL connection is. Only `SUBSCRIBED` carries events and takes commands."""

    CONNECTED = "connected"  # the transport is up; FreeSWITCH's auth/request is awaited
    AUTHENTICATING = "authenticating"  # ``auth`` sent, its reply awaited
    SUBSCRIBING = "subscribing"  # the password was accepted; ``event <format> <names>`` sent, its reply awaited
    SUBSCRIBED = "subscribed"  # events flow; api/bgapi/other commands may be sent
    REFUSED = "refused"  # the password was refused
    CLOSED = "closed"  # ended: by us, by a disconnect notice, or by a protocol error


#: (state, step) -> next state. A step not in the table is refused; ``close`` is always allowed.
ESL_TRANSITIONS: Mapping[tuple[EslState, str], EslState] = {
    (EslState.CONNECTED, "auth_request"): EslState.AUTHENTICATING,
    (EslState.AUTHENTICATING, "accepted"): EslState.SUBSCRIBING,
    (EslState.AUTHENTICATING, "refused"): EslState.REFUSED,
    (EslState.SUBSCRIBING, "subscribed"): EslState.SUBSCRIBED,
    (EslState.SUBSCRIBED, "disconnect_notice"): EslState.CLOSED,
}

#: What each handshake state waits for (the words a timeout uses).
_AWAITING = {EslState.CONNECTED: "auth/request", EslState.AUTHENTICATING: "reply to auth",
             EslState.SUBSCRIBING: "reply to the event subscription"}

#: Commands awaiting their reply at once on one connection.
MAX_PENDING = 1024


@dataclass(frozen=True, slots=True)
class Reply:
    """The reply (``command/reply`` or ``api/response``) to the command `token` stands for."""

    token: int
    frame: CommandReply | ApiResponse


@dataclass(frozen=True, slots=True)
class JobDone:
    """The BACKGROUND_JOB that answers a ``bgapi`` sent with `job_uuid`; the event itself is returned too."""

    job_uuid: str
    body: str


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The connection moved on; `reason` is FreeSWITCH's own words for a refusal."""

    state: EslState
    reason: str = ""


class EslConnection:
    """One inbound ESL connection's state, h11-style: `receive_data` takes bytes and returns `Event`s, `Reply`s,
    `JobDone`s, `StateChanged`s and the `DisconnectNotice`; what must be written is taken from `data_to_send`.

    The handshake is driven here: FreeSWITCH's auth/request queues ``auth``, the accepted reply queues the event
    subscription, its reply moves the connection to `SUBSCRIBED`; a frame out of that order is a `ProtocolError`.
    FreeSWITCH answers commands in order, so replies are matched through a FIFO of tokens; an `abandon`-ed
    command keeps its slot (its late reply is dropped), or every later reply would go to the wrong caller.
    ``bgapi`` sends its own Job-UUID, so the BACKGROUND_JOB is matched without racing the command reply.
    """

    __slots__ = ("state", "parser", "_password", "events", "event_format", "max_pending", "_out", "_fifo",
                 "_abandoned", "_jobs", "_next", "late", "unmatched", "carried")

    def __init__(self, password: str, *, events: Iterable[str] = ("ALL",), event_format: str = "json",
                 wanted_events: Iterable[str] | None = None, max_pending: int = MAX_PENDING,
                 parser: EslParser | None = None) -> None:
        self.state = EslState.CONNECTED
        if parser is None:
            parser = EslParser(None if wanted_events is None else frozenset(wanted_events) | {"BACKGROUND_JOB"})
        self.parser = parser
        self._password = password
        self.events = tuple(events)
        self.event_format = event_format
        self.max_pending = max_pending
        self._out: list[bytes] = []
        self._fifo: deque[int] = deque()  # tokens of the commands awaiting a reply, in the order sent
        self._abandoned: set[int] = set()
        self._jobs: set[str] = set()  # Job-UUIDs of bgapi commands whose BACKGROUND_JOB is awaited
        self._next = 1
        self.late = 0  # replies to abandoned commands, dropped
        self.unmatched = 0  # replies with no command waiting, dropped
        self.carried = False  # a well-formed frame after the subscription

    def __repr__(self) -> str:  # the password must never show in a log line or a traceback
        return f"EslConnection({self.state.value}, pending={len(self._fifo)})"

    def _step(self, step: str) -> None:
        nxt = ESL_TRANSITIONS.get((self.state, step))
        if nxt is None:
            raise StateError(f"ESL connection {self.state.value}: cannot {step}")
        self.state = nxt

    @property
    def awaiting(self) -> str | None:
        """What the handshake waits for (``auth/request`` ...), None once subscribed."""
        return _AWAITING.get(self.state)

    @property
    def pending(self) -> int:
        return len(self._fifo)

    def command(self, *parts: str, headers: Mapping[str, str] | None = None) -> int:
        """Queue one command (``api ...``, ``filter ...``); returns the token its `Reply` will carry."""
        if self.state is not EslState.SUBSCRIBED:
            raise StateError(f"ESL connection {self.state.value}: cannot send {parts[:1]}")
        if len(self._fifo) >= self.max_pending:
            raise StateError(f"ESL connection has {len(self._fifo)} commands unanswered (bound {self.max_pending})")
        data = build_command(*parts, headers=headers)
        token, self._next = self._next, self._next + 1
        self._fifo.append(token)
        self._out.append(data)
        return token

    def bgapi(self, job_uuid: str, *parts: str) -> int:
        """Queue ``bgapi <parts>`` with its own Job-UUID; its `JobDone` carries that uuid."""
        token = self.command("bgapi", *parts, headers={"Job-UUID": job_uuid})
        self._jobs.add(job_uuid)
        return token

    def abandon(self, token: int) -> None:
        """The caller stopped waiting: the reply keeps its slot in the FIFO and is dropped when it comes."""
        if token in self._fifo:
            self._abandoned.add(token)

    def abandon_job(self, job_uuid: str) -> None:
        self._jobs.discard(job_uuid)

    def close(self) -> tuple[list[int], list[str]]:
        """The connection ended: the tokens and Job-UUIDs that will never be answered."""
        self.state = EslState.CLOSED
        tokens = [t for t in self._fifo if t not in self._abandoned]
        jobs = list(self._jobs)
        self._fifo.clear()
        self._abandoned.clear()
        self._jobs.clear()
        self._out.clear()
        return tokens, jobs

    def data_to_send(self) -> bytes:
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        return data

    def receive_data(self, data: bytes) -> list[Any]:
        """Bytes from FreeSWITCH -> what they mean, in order; nothing after a disconnect notice. A
        `ProtocolError` closes the connection."""
        if self.state is EslState.CLOSED:
            raise StateError("ESL connection closed: no more bytes expected")
        try:
            frames = self.parser.feed(data)
            if self.state is not EslState.SUBSCRIBED:
                return self._handshake(frames)
        except ProtocolError:
            self.close()
            raise
        return self._subscribed(frames)

    def _subscribed(self, frames: list[Frame]) -> list[Any]:
        if not frames:
            return []
        if frames[0].__class__ is not DisconnectNotice:
            self.carried = True  # a frame other than the notice: this server works
        out: list[Any] = []
        for frame in frames:
            cls = frame.__class__
            if cls is Event:
                if frame.name == "BACKGROUND_JOB" and self._jobs:  # type: ignore[union-attr]
                    job = str(frame.get("Job-UUID", ""))  # type: ignore[union-attr]
                    if job in self._jobs:
                        self._jobs.discard(job)
                        out.append(JobDone(job, frame.body or ""))  # type: ignore[union-attr]
                out.append(frame)
            elif cls is CommandReply or cls is ApiResponse:
                if not self._fifo:
                    self.unmatched += 1
                    continue
                token = self._fifo.popleft()
                if token in self._abandoned:
                    self._abandoned.discard(token)
                    self.late += 1
                else:
                    out.append(Reply(token, frame))  # type: ignore[arg-type]
            elif cls is DisconnectNotice:
                self._step("disconnect_notice")
                out.append(frame)
                break
            else:
                out.append(frame)
        return out

    def _handshake(self, frames: list[Frame]) -> list[Any]:
        out: list[Any] = []
        for index, frame in enumerate(frames):
            state = self.state
            if state is EslState.SUBSCRIBED:
                out.extend(self._subscribed(frames[index:]))
                break
            if state is EslState.CONNECTED:
                if not isinstance(frame, AuthRequest):
                    raise ProtocolError(f"expected auth/request, got {type(frame).__name__}")
                self._step("auth_request")
                self._out.append(build_command("auth", self._password))
            elif state is EslState.AUTHENTICATING:
                if not isinstance(frame, CommandReply):
                    raise ProtocolError(f"expected a reply to auth, got {type(frame).__name__}")
                if not frame.ok:
                    self._step("refused")
                    out.append(StateChanged(self.state, frame.reply_text or "auth refused"))
                    break
                self._step("accepted")
                out.append(StateChanged(self.state))
                self._out.append(build_command("event", self.event_format, *self.events))
            elif state is EslState.SUBSCRIBING:
                if not isinstance(frame, CommandReply) or not frame.ok:
                    raise ProtocolError(f"event subscription refused: {getattr(frame, 'reply_text', frame)!r}")
                self._step("subscribed")
                out.append(StateChanged(self.state, f"subscribed ({' '.join(self.events)})"))
            else:  # REFUSED: nothing more is read
                break
        return out


__all__ = [
    "ESL_TRANSITIONS", "EslConnection", "EslState", "JobDone", "MAX_PENDING", "Reply", "StateChanged", "StateError",
    "ApiResponse", "AuthRequest", "CommandInjectionError", "CommandReply", "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_HEADER_BYTES", "DisconnectNotice", "EslParser", "Event", "Frame", "LogData", "ProtocolError",
    "UnknownFrame", "build_command", "parse_json_event", "parse_plain_event", "parse_stream", "sanitize_arg",
    "truncate_utf8",
]
