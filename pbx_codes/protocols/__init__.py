"""Sans-IO protocol cores: bytes in, typed events out; commands built by one function per protocol.

Nothing here opens a socket, reads a clock or touches asyncio, so every rule can be tested by feeding bytes.
Text that came from the network (a carrier's reason phrase, a header value) is untrusted: before it goes into an
AMI action or an AGI command it passes through `safe_value`, and the builders still refuse CR, LF and NUL.
"""
from __future__ import annotations

import re

#: Default bound for a value written back into the PBX (CDR columns are often VARCHAR(255)).
MAX_VALUE_BYTES = 255

# C0 controls, DEL, C1 controls and the Unicode line/paragraph separators: anything a line-based peer (or a CSV
# writer, or a terminal) might take as a line break or a control.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


class ProtocolError(Exception):
    """The peer broke the protocol (a line or a frame too long, a malformed request): drop the connection."""


def small_int(text: str | None, max_digits: int = 9) -> int | None:
    """A short ASCII decimal number from the network, else None (never raises on digits `int()` rejects)."""
    if text is None:
        return None
    text = text.strip()
    if not text or len(text) > max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def safe_value(value: object, max_bytes: int = MAX_VALUE_BYTES) -> str:
    """`value` as one line of printable text, at most `max_bytes` of UTF-8, cut on a character boundary.

    Bytes are decoded as UTF-8 with replacement characters, so invalid input cannot fail here; control characters
    (CR, LF, NUL, TAB, ...) become single spaces and the ends are trimmed.
    """
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray, memoryview)):
        text = bytes(value).decode("utf-8", errors="replace")
    else:
        text = str(value)
    text = _CONTROL.sub(" ", text).strip()
    # "replace" also turns lone surrogates (from surrogateescape decoding) into "?", so the result always encodes.
    raw = text.encode("utf-8", errors="replace")
    if len(raw) <= max_bytes:
        return raw.decode("utf-8")
    # errors="ignore" drops the partial character left at the cut, so the result is still valid UTF-8.
    return raw[:max_bytes].decode("utf-8", errors="ignore").rstrip()


__all__ = ["MAX_VALUE_BYTES", "ProtocolError", "safe_value"]
