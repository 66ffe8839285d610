"""Sans-IO protocol cores: bytes in, typed events out; commands built by one function per protocol.

Nothing here opens a socket, reads a clock or touches asyncio, so every rule can be tested by feeding bytes. Each
protocol has a parser (frames) and a connection (`AmiConnection`, `EslConnection`, `AgiSession`) that owns what a
connection is in: a state enum with its transition table, which reply answers which request, and the bounds.
Text that came from the network (a carrier's reason phrase, a header value) is untrusted: before it goes into an
AMI action or an AGI command it passes through `safe_value`, and the builders still refuse CR, LF and NUL.
"""
from __future__ import annotations

from pbx_codes.text import AMI_VALUE, clean

#: Default bound for a value written back into the PBX (CDR columns are often VARCHAR(255)).
MAX_VALUE_BYTES = 255


#: The peer broke the protocol (a line or a frame too long, a malformed request): drop the connection.
from pbx_codes.errors import ProtocolError  # noqa: E402 - the one hierarchy's kind, re-exported here


class StateError(ProtocolError):
    """This side asked its connection for a step the connection's state does not allow (a command before the
    login, a second AGI command before the first was answered, more requests outstanding than the bound): a bug or
    a misuse here, never the peer's fault (h11's LocalProtocolError)."""


def small_int(text: str | None, max_digits: int = 9) -> int | None:
    """A short ASCII decimal number from the network, else None (never raises on digits `int()` rejects)."""
    if text is None:
        return None
    text = text.strip()
    if not text or len(text) > max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def safe_value(value: object, max_bytes: int = MAX_VALUE_BYTES) -> str:
    """`value` as one line of printable text, at most `max_bytes` of UTF-8, cut on a character boundary: the
    AMI/AGI profile of the one policy for network text (`pbx_codes.text`)."""
    return clean(value, AMI_VALUE, max_bytes)


__all__ = ["MAX_VALUE_BYTES", "ProtocolError", "StateError", "safe_value"]
