"""The FastAGI wire protocol (server side), sans-IO: bytes in, `AgiRequest`/`AgiReply`/`AgiHangup` out.

The rules, in one place:

- Asterisk connects and sends the request environment: ``agi_<name>: <value>`` lines, then one blank line.
  ``agi_network_script`` is the part of the ``agi://host/<script>?<query>`` URL after the host; ``agi_arg_N`` are
  the AGI() application's extra arguments.
- Then the server writes one command line at a time and reads one reply per command:
  ``200 result=<n> [(<data>)] [key=value ...]``; ``510 Invalid or unknown command``; ``511 Command Not Permitted
  on a dead channel or intercept routine``; and the multi-line usage reply ``520-Invalid command syntax...``
  continued until the line ``520 End of proper usage.``. Commands must not be pipelined: Asterisk reads them
  through a buffered stream and may not wake up for a second queued line.
- With ``AGISIGHUP`` on, Asterisk also sends a bare ``HANGUP`` line when the channel hangs up; it is not a reply.
- Lines end with LF (CRLF accepted). A line over `MAX_LINE` or more than `MAX_ENV_LINES` environment lines raise
  `ProtocolError`; a peer that closes before the blank line gets `IncompleteRequest` from `feed_eof`.
- `AgiSession` owns one session's state (`AgiState`, `AGI_TRANSITIONS`): request -> one command at a time -> its
  reply, the hangup notice, and the session's byte budget.
- Commands are built by `build_command` only: every argument that is not a plain token is double-quoted with
  ``"`` and ``\\`` backslash-escaped, exactly as res_agi's argument parser reads them, and CR/LF/NUL are refused.
- res_agi reads a command into a 2048-byte buffer (``AGI_BUF_LEN``): the bytes of a longer line that do not fit are
  read as the *next* command. So a command line over `MAX_COMMAND_BYTES` (LF included) is refused too, or a long
  value could smuggle a second command past the quoting.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import parse_qsl

from pbx_codes.errors import InjectionError
from pbx_codes.protocols import ProtocolError, StateError, safe_value

MAX_LINE = 8 * 1024
MAX_ENV_LINES = 256
#: The longest command line res_agi reads whole: its buffer is AGI_BUF_LEN (2048) bytes, NUL included.
MAX_COMMAND_BYTES = 2047

# ASCII digits only: \d would also take digit forms int() refuses (superscripts) or reads unexpectedly.
_RESULT = re.compile(r"^result=(-?[0-9]+)")
#: res_agi's results are C ints; a longer number is garbage (and int() refuses strings over 4300 digits).
MAX_RESULT_DIGITS = 20
# A word res_agi reads back unchanged without quotes (no blanks, quotes, backslashes or controls).
_PLAIN = re.compile(r"^[A-Za-z0-9_.,:;/@=+()${}\[\]<>*#!?%&^~|'-]+$")


class IncompleteRequest(ProtocolError):
    """The peer closed the connection before finishing the request or a reply."""


@dataclass(frozen=True, slots=True)
class AgiRequest:
    """The FastAGI request environment. `script` is the route name, `query` its URL parameters."""

    env: Mapping[str, str]
    script: str
    query: Mapping[str, str]
    args: tuple[str, ...]

    @property
    def channel(self) -> str | None:
        return self.env.get("agi_channel")

    @property
    def uniqueid(self) -> str | None:
        return self.env.get("agi_uniqueid")

    def param(self, name: str, default: str | None = None) -> str | None:
        """A parameter from the URL query, else from a ``name=value`` AGI argument."""
        if name in self.query:
            return self.query[name]
        prefix = name + "="
        for arg in self.args:
            if arg.startswith(prefix):
                return arg[len(prefix):]
        return default


@dataclass(frozen=True, slots=True)
class AgiReply:
    """One command's reply. `value` is the text in parentheses (a variable's value), None when absent."""

    code: int
    result: int | None = None
    value: str | None = None
    text: str = ""
    lines: tuple[str, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def dead_channel(self) -> bool:
        return self.code == 511


@dataclass(frozen=True, slots=True)
class AgiHangup:
    """Asterisk's ``HANGUP`` notice (only with AGISIGHUP): the channel is gone, commands may still be answered."""


AgiMessage = AgiRequest | AgiReply | AgiHangup


def parse_reply_line(line: str) -> AgiReply:
    """A single-line reply: ``200 result=1 (value) endpos=0``. The value is between the first ``(`` after the
    result and the last ``)``, so parentheses inside a value survive."""
    code_text, _, rest = line.partition(" ")
    if len(code_text) != 3 or not code_text.isascii() or not code_text.isdigit():
        raise ProtocolError(f"AGI reply without a status code: {line[:80]!r}")
    code = int(code_text)
    match = _RESULT.match(rest)
    if match is None:
        return AgiReply(code, None, None, rest, (line,))
    if len(match.group(1)) > MAX_RESULT_DIGITS:
        raise ProtocolError(f"AGI result of {len(match.group(1))} digits: {line[:80]!r}")
    result = int(match.group(1))
    tail = rest[match.end():]
    value = None
    if tail.startswith(" (") and ")" in tail:
        value = tail[2:tail.rindex(")")]
    return AgiReply(code, result, value, rest, (line,))


class AgiParser:
    """Incremental FastAGI server-side reader: the request first, then replies (and HANGUP notices)."""

    __slots__ = ("_buf", "_env", "_request_done", "_usage", "max_line", "max_env_lines")

    def __init__(self, *, max_line: int = MAX_LINE, max_env_lines: int = MAX_ENV_LINES) -> None:
        self._buf = bytearray()
        self._env: dict[str, str] = {}
        self._request_done = False
        self._usage: list[str] | None = None  # lines of a 520- usage reply in progress
        self.max_line = max_line
        self.max_env_lines = max_env_lines

    @property
    def request_done(self) -> bool:
        return self._request_done

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete line (bounded by `max_line`)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[AgiMessage]:
        """Add bytes from Asterisk; return the request/replies they complete."""
        buf = self._buf
        buf += data
        out: list[AgiMessage] = []
        pos = 0
        while True:
            nl = buf.find(b"\n", pos)
            if nl == -1:
                break
            if nl - pos > self.max_line:
                raise ProtocolError(f"AGI line over the {self.max_line} byte limit")
            line = buf[pos:nl].decode("utf-8", errors="replace")
            pos = nl + 1
            if line.endswith("\r"):
                line = line[:-1]
            message = self._line(line)
            if message is not None:
                out.append(message)
        if pos:
            del buf[:pos]
        if len(buf) > self.max_line:
            raise ProtocolError(f"AGI line over the {self.max_line} byte limit")
        return out

    def feed_eof(self) -> None:
        """The peer closed: fine between replies, an `IncompleteRequest` in the middle of something."""
        if not self._request_done:
            raise IncompleteRequest("connection closed before the end of the AGI request")
        if self._buf or self._usage is not None:
            raise IncompleteRequest("connection closed in the middle of an AGI reply")

    def _line(self, line: str) -> AgiMessage | None:
        if not self._request_done:
            if line == "":
                if not self._env:
                    return None  # stray blank line before the request: ignore
                self._request_done = True
                return _request(self._env)
            key, colon, value = line.partition(":")
            if not colon or not key.startswith("agi_"):
                raise ProtocolError(f"not a FastAGI request line: {line[:80]!r}")
            if len(self._env) >= self.max_env_lines:
                raise ProtocolError(f"FastAGI request over {self.max_env_lines} lines")
            self._env[key] = value.strip()
            return None
        if self._usage is not None:
            self._usage.append(line)
            if line.startswith("520 "):
                lines = tuple(self._usage)
                self._usage = None
                return AgiReply(520, None, None, "\n".join(lines[1:-1]), lines)
            if len(self._usage) > self.max_env_lines:
                raise ProtocolError("AGI usage reply too long")
            return None
        if line == "HANGUP":
            return AgiHangup()
        if line == "":
            return None
        if line.startswith("520-"):
            self._usage = [line]
            return None
        return parse_reply_line(line)


def _request(env: dict[str, str]) -> AgiRequest:
    script_url = env.get("agi_network_script") or env.get("agi_request", "")
    if "://" in script_url:  # agi_request carries the whole URL: keep the path after the host
        script_url = script_url.split("://", 1)[1].partition("/")[2]
    path, _, query_text = script_url.partition("?")
    query = dict(parse_qsl(query_text, keep_blank_values=True))
    args = []
    n = 1
    while f"agi_arg_{n}" in env:
        args.append(env[f"agi_arg_{n}"])
        n += 1
    return AgiRequest(dict(env), path.strip("/"), query, tuple(args))


def quote_arg(word: str) -> str:
    """One argument as res_agi's parser will read it back: bare when plain, else double-quoted and escaped."""
    if "\r" in word or "\n" in word or "\x00" in word:
        raise InjectionError(f"AGI argument contains CR, LF or NUL: {word[:40]!r}")
    if word and _PLAIN.match(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_command(*words: object) -> bytes:
    """One AGI command line, e.g. ``build_command("SET", "VARIABLE", "CDR(pbx_phrase)", phrase)``.

    The only way this project writes to AGI. CR, LF or NUL in any word raises ValueError; quotes and backslashes
    are escaped, so no value can end the line or split into extra arguments; a line over `MAX_COMMAND_BYTES`
    raises ValueError, since res_agi would cut it and run the rest as another command.
    """
    if not words:
        raise ValueError("an AGI command needs at least one word")
    line = (" ".join(quote_arg(str(w)) for w in words) + "\n").encode("utf-8")
    if len(line) > MAX_COMMAND_BYTES:
        raise ValueError(f"AGI command of {len(line)} bytes is over res_agi's {MAX_COMMAND_BYTES} byte line")
    return line


def unquote_args(line: str) -> list[str]:
    """res_agi's own argument splitting (quotes group, backslash escapes): what Asterisk would execute."""
    args: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and cur is None:
                cur = []
                args.append("")
            escaped = False
            continue
        if ch in " \t" and not quoted and not escaped:
            if cur is not None:
                args[-1] = "".join(cur)
                cur = None
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if cur is None:
            cur = []
            args.append("")
        cur.append(ch)
        escaped = False
    if cur is not None:
        args[-1] = "".join(cur)
    return args


# --- the session ------------------------------------------------------------------------------------------------

class AgiState(Enum):
    """Where one FastAGI session is. res_agi reads one command at a time: no command is sent before the last one's
    reply came."""

    REQUEST = "request"  # reading the request environment
    READY = "ready"  # the request is complete and no command is in flight
    COMMAND = "command"  # one command sent, its reply awaited
    CLOSED = "closed"


#: (state, step) -> next state; anything else is refused (``close`` is always allowed).
AGI_TRANSITIONS: Mapping[tuple[AgiState, str], AgiState] = {
    (AgiState.REQUEST, "request"): AgiState.READY,
    (AgiState.READY, "command"): AgiState.COMMAND,
    (AgiState.COMMAND, "reply"): AgiState.READY,
}


class SessionTooLarge(ProtocolError):
    """The peer sent more than the session's byte budget (a real request and its replies are 1-2 KB)."""


class AgiSession:
    """One FastAGI connection's state, server side: `receive_data` takes bytes and returns the `AgiRequest`, the
    `AgiReply` to the command in flight and `AgiHangup` notices; `send_command` gives the bytes of the next command.

    It owns the bounds (at most `max_session_bytes` over the whole session, besides the parser's line and request
    bounds) and the rule that commands are not pipelined. A command whose caller gave up (`abandon`) still holds
    the line until its reply comes; that reply is dropped, not handed to the next command.
    """

    __slots__ = ("state", "parser", "request", "hangup", "received", "max_session_bytes", "_abandoned", "unsolicited",
                 "_max_line", "_max_env_lines")

    def __init__(self, *, max_session_bytes: int | None = None, max_line: int = MAX_LINE,
                 max_env_lines: int = MAX_ENV_LINES) -> None:
        self.state = AgiState.REQUEST
        self.parser = AgiParser(max_line=max_line, max_env_lines=max_env_lines)
        self._max_line, self._max_env_lines = max_line, max_env_lines
        self.request: AgiRequest | None = None
        self.hangup = False  # Asterisk sent HANGUP (AGISIGHUP=yes); commands are still answered in a handler
        self.received = 0  # bytes received over the whole session
        self.max_session_bytes = max_session_bytes
        self._abandoned = False
        self.unsolicited = 0  # replies with no command in flight, dropped

    def _step(self, step: str) -> None:
        nxt = AGI_TRANSITIONS.get((self.state, step))
        if nxt is None:
            raise StateError(f"AGI session {self.state.value}: cannot {step}")
        self.state = nxt

    def receive_data(self, data: bytes) -> list[AgiMessage]:
        """Bytes from Asterisk -> the request, replies and hangup notices they complete."""
        if self.state is AgiState.CLOSED:
            return []
        self.received += len(data)
        if self.max_session_bytes is not None and self.received > self.max_session_bytes:
            self.close()
            raise SessionTooLarge(f"AGI session over {self.max_session_bytes} bytes")
        try:
            messages = self.parser.feed(data)
        except ProtocolError:
            self.close()
            raise
        if not messages:
            return messages
        out: list[AgiMessage] = []
        for message in messages:
            if isinstance(message, AgiReply):
                if self.state is not AgiState.COMMAND:
                    self.unsolicited += 1
                    continue
                self._step("reply")
                if self._abandoned:
                    self._abandoned = False
                    continue
                out.append(message)
            elif isinstance(message, AgiRequest):
                self._step("request")
                self.request = message
                out.append(message)
            else:
                self.hangup = True
                out.append(message)
        return out

    def send_command(self, *words: object) -> bytes:
        """The bytes of the next command (see `build_command`); refused while another is in flight."""
        line = build_command(*words)
        self._step("command")
        return line

    def abandon(self) -> None:
        """The command in flight lost its caller: its reply, when it comes, is dropped."""
        if self.state is AgiState.COMMAND:
            self._abandoned = True

    def receive_eof(self) -> None:
        """The peer closed: an `IncompleteRequest` if it was in the middle of the request or a reply."""
        try:
            self.parser.feed_eof()
        finally:
            self.state = AgiState.CLOSED

    def close(self) -> None:
        """Ended: let go of whatever was buffered at once."""
        self.state = AgiState.CLOSED
        self.parser = AgiParser(max_line=self._max_line, max_env_lines=self._max_env_lines)


__all__ = [
    "AGI_TRANSITIONS", "AgiSession", "AgiState", "SessionTooLarge", "StateError",
    "AgiHangup", "AgiMessage", "AgiParser", "AgiReply", "AgiRequest", "IncompleteRequest", "MAX_COMMAND_BYTES",
    "MAX_LINE",
    "ProtocolError", "build_command", "parse_reply_line", "quote_arg", "safe_value", "unquote_args",
]
