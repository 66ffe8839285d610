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
- Limits: a header block over ``max_header_bytes`` (64 KiB) or a ``Content-Length`` over ``max_body_bytes``
  (8 MiB by default) raises `ProtocolError` before anything is buffered further: a broken or hostile peer cannot
  make the reader grow without bound. After a `ProtocolError` the parser is dead (like h11): reconnect.
- Commands are built by `build_command` only, which refuses CR/LF in any argument: a carrier's phrase cannot add a
  line to an ESL command. `sanitize_arg` makes untrusted text fit for an argument.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Union
from urllib.parse import unquote

DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024

_BLOCK_END = b"\n\n"


class ProtocolError(Exception):
    """The peer sent bytes that are not ESL (or exceed a limit). The connection cannot be trusted any more."""


class CommandInjectionError(ValueError):
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


Frame = Union[AuthRequest, CommandReply, ApiResponse, Event, DisconnectNotice, LogData, UnknownFrame]


def _decode(raw: bytes) -> str:
    # FreeSWITCH passes caller names and carrier phrases through as it got them; a stray Latin-1 byte must not
    # kill the connection, so undecodable bytes become U+FFFD instead of raising.
    return raw.decode("utf-8", "replace")


def _parse_block(text: str, *, url_decoded: bool) -> dict[str, str]:
    """``Name: value`` lines into a dict. Raises ProtocolError on a line without a colon."""
    if not url_decoded:
        try:
            # FreeSWITCH always writes "Name: value"; this C-speed form covers it, the loop below the rest.
            return dict(line.split(": ", 1) for line in text.split("\n") if line)  # type: ignore[misc]
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
    if not raw.isdigit() or not raw.isascii():
        raise ProtocolError(f"Content-Length is not a number: {raw[:40]!r}")
    length = int(raw)
    if length > limit:
        raise ProtocolError(f"Content-Length {length} exceeds the limit of {limit} bytes")
    return length


_ENCODED_NL = ("%0A", "%0a", "%0D", "%0d")
_NL, _CR = "\ue000", "\ue001"  # private-use stand-ins for encoded line breaks while the block is decoded at once


def _parse_encoded_block(text: str) -> dict[str, str]:
    """A URL-encoded header block, decoded with one ``unquote`` call instead of one per value (the hot path).

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
        for name, value in headers.items():
            if _NL in value or _CR in value:
                headers[name] = value.replace(_NL, "\n").replace(_CR, "\r")
    return headers


def parse_plain_event(text: str) -> Event:
    """The body of a ``text/event-plain`` frame: URL-encoded headers, optionally followed by its own body."""
    head, sep, rest = text.partition("\n\n")
    headers = _parse_encoded_block(head)
    body: str | None = None
    if sep and "Content-Length" in headers:
        body = rest
    return Event(name=headers.get("Event-Name", ""), headers=headers, body=body, format="plain")


def parse_json_event(text: str) -> Event:
    """The body of a ``text/event-json`` frame: one JSON object; ``_body`` holds the event's own body."""
    try:
        data = json.loads(text)
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


def _frame(headers: dict[str, str], body: bytes | None) -> Frame:
    ctype = headers.get("Content-Type", "")
    text = _decode(body) if body is not None else ""
    if ctype == "text/event-plain":
        return parse_plain_event(text)
    if ctype == "text/event-json":
        return parse_json_event(text)
    if ctype == "command/reply":
        return CommandReply(reply_text=headers.get("Reply-Text", ""), headers=headers)
    if ctype == "api/response":
        return ApiResponse(body=text, headers=headers)
    if ctype == "auth/request":
        return AuthRequest(headers=headers)
    if ctype == "text/event-xml":
        return _xml_event(text)
    if ctype == "text/disconnect-notice":
        return DisconnectNotice(body=text, headers=headers)
    if ctype == "log/data":
        return LogData(body=text, headers=headers)
    return UnknownFrame(content_type=ctype, headers=headers, body=text if body is not None else None)


class EslParser:
    """Incremental ESL reader: ``feed(bytes) -> list[Frame]``. Keeps at most one incomplete frame buffered."""

    __slots__ = ("_buf", "_scan_from", "_pending_headers", "_pending_length", "_dead", "max_header_bytes",
                 "max_body_bytes")

    def __init__(self, *, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self._buf = bytearray()
        self._scan_from = 0
        self._pending_headers: dict[str, str] | None = None
        self._pending_length = 0
        self._dead: str | None = None
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame (what a disconnect would lose)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        if self._dead is not None:
            raise ProtocolError(f"parser already failed: {self._dead}")
        if data:
            self._buf += data
        try:
            return self._drain()
        except ProtocolError as exc:
            self._dead = str(exc)
            raise

    def _drain(self) -> list[Frame]:
        out: list[Frame] = []
        buf = self._buf
        pos = 0
        while True:
            if self._pending_headers is None:
                # Blank lines between frames carry nothing; skip them so the next block starts at a name.
                while pos < len(buf) and buf[pos] == 0x0A:
                    pos += 1
                end = buf.find(_BLOCK_END, max(pos, self._scan_from))
                if end < 0:
                    if len(buf) - pos > self.max_header_bytes:
                        raise ProtocolError(f"header block exceeds {self.max_header_bytes} bytes")
                    # Next time, resume the search where this one stopped (minus one byte of a split "\n\n").
                    self._scan_from = max(pos, len(buf) - 1)
                    break
                if end - pos > self.max_header_bytes:
                    raise ProtocolError(f"header block exceeds {self.max_header_bytes} bytes")
                headers = _parse_block(_decode(bytes(buf[pos:end])), url_decoded=False)
                pos = end + 2
                length = _content_length(headers, self.max_body_bytes)
                if length == 0:
                    out.append(_frame(headers, None))
                    continue
                self._pending_headers = headers
                self._pending_length = length
            if len(buf) - pos < self._pending_length:
                break
            body = bytes(buf[pos:pos + self._pending_length])
            pos += self._pending_length
            headers, self._pending_headers = self._pending_headers, None
            out.append(_frame(headers, body))
        if pos:
            del buf[:pos]
            self._scan_from = max(0, self._scan_from - pos)
        return out


def parse_stream(data: bytes, **limits: int) -> list[Frame]:
    """Every complete frame in a whole capture (a trailing partial frame is ignored)."""
    return EslParser(**limits).feed(data)


# --- commands ---------------------------------------------------------------------------------------------------

def build_command(*parts: str, headers: Mapping[str, str] | None = None) -> bytes:
    """One ESL command as bytes: ``build_command("api", "uuid_setvar", uuid, name, value)``.

    Every part and header is checked: CR or LF anywhere raises `CommandInjectionError`, because a newline would
    end this command and start another one chosen by whoever wrote the text (a carrier's phrase, a caller name).
    """
    if not parts or not parts[0]:
        raise ValueError("an ESL command needs a verb")
    for part in parts:
        if not isinstance(part, str):
            raise TypeError(f"command parts must be str, not {type(part).__name__}")
        if "\n" in part or "\r" in part:
            raise CommandInjectionError(f"CR/LF in an ESL command argument: {part[:60]!r}")
    lines = [" ".join(parts)]
    for name, value in (headers or {}).items():
        for text in (name, value):
            if "\n" in text or "\r" in text or (text is name and ":" in text):
                raise CommandInjectionError(f"invalid ESL command header: {text[:60]!r}")
        lines.append(f"{name}: {value}")
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def truncate_utf8(text: str, max_bytes: int) -> str:
    """At most ``max_bytes`` of UTF-8, never cutting a character in half."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    return raw[:max_bytes].decode("utf-8", "ignore")


def sanitize_arg(text: str | None, max_bytes: int = 512) -> str:
    """Untrusted text made safe as one command argument: control characters (CR, LF, TAB, NUL...) become spaces,
    runs of spaces collapse, and the result is cut to ``max_bytes`` of UTF-8 on a character boundary."""
    if not text:
        return ""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    cleaned = " ".join(cleaned.split())
    return truncate_utf8(cleaned, max_bytes)


__all__ = [
    "ApiResponse", "AuthRequest", "CommandInjectionError", "CommandReply", "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_HEADER_BYTES", "DisconnectNotice", "EslParser", "Event", "Frame", "LogData", "ProtocolError",
    "UnknownFrame", "build_command", "parse_json_event", "parse_plain_event", "parse_stream", "sanitize_arg",
    "truncate_utf8",
]
