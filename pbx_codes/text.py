"""One policy for text that came from the network (a carrier's phrase, a gateway name, a header value).

Such text is untrusted: wherever it goes it must stay one value. Each place it goes has a named `Profile` that says
what is neutralised there and how, and `clean(value, PROFILE)` applies it:

- `AMI_VALUE`, `AGI_ARGUMENT`: one line for a line-based protocol (CR, LF, NUL and every other control become a
  space), at most 255 bytes of UTF-8 cut on a character boundary. The command builders still refuse CR/LF/NUL.
- `ESL_ARGUMENT`: one ESL command argument: anything not printable becomes a space, runs of spaces collapse.
- `FS_CHANNEL_VARIABLE`: an ESL argument that is also safe inside mod_cdr_csv/mod_json_cdr templates: no double
  quote or backslash (they are not escaped there), no ``${`` (no variable expansion), at most 200 bytes.
- `CSV_CELL`: one line, and a value starting with ``= + - @`` (or tab/CR) gets a leading ``'`` so a spreadsheet
  shows it as text instead of running it as a formula (OWASP's advice on CSV injection).
- `LOG_LINE`: nothing is lost, every control is shown escaped (``\\x1b``, ``\\n``), so a log line cannot be
  forged, recoloured or reordered on a terminal.
- `TERMINAL`: each control or format character becomes ``?`` (what `pbx-codes tail` prints).

In every profile the bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E/U+200F, U+061C) are neutralised
as controls are: they can make a line read differently from what it holds.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from types import TracebackType

#: C0 controls, DEL, C1 controls, the Unicode line/paragraph separators and the bidirectional controls.
_LINE_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+")
_FORMAT_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
#: What logging hands formatException: sys.exc_info()'s triple.
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_FORMULA_START = frozenset("=+-@\t\r")


@dataclass(frozen=True, slots=True)
class Profile:
    """What one destination needs of untrusted text."""

    name: str
    unsafe: str = "line"           # line: controls, separators, bidi | nonprintable: not str.isprintable()
    #                                (bidi is not) | format: categories Cc, Cf, Zl, Zp, Cs
    replacement: str = " "         # what an unsafe character becomes; "escape": its escape sequence
    collapse: bool = False         # runs of whitespace become one space
    strip: bool = True             # no space at either end
    swaps: tuple[tuple[str, str], ...] = ()   # characters the destination would misread, and their stand-ins
    formula: bool = False          # neutralise a leading = + - @ (spreadsheet formula)
    max_bytes: int | None = None   # bound in UTF-8 bytes, cut on a character boundary


AMI_VALUE = Profile("ami-value", max_bytes=255)
AGI_ARGUMENT = Profile("agi-argument", max_bytes=255)
ESL_ARGUMENT = Profile("esl-argument", unsafe="nonprintable", collapse=True, max_bytes=512)
FS_CHANNEL_VARIABLE = Profile("fs-channel-variable", unsafe="nonprintable", collapse=True,
                              swaps=(('"', "'"), ("\\", "/"), ("${", "$ {")), max_bytes=200)
CSV_CELL = Profile("csv-cell", formula=True)
LOG_LINE = Profile("log-line", unsafe="format", replacement="escape", strip=False)
TERMINAL = Profile("terminal", unsafe="format", replacement="?", strip=False)

PROFILES: dict[str, Profile] = {p.name: p for p in (AMI_VALUE, AGI_ARGUMENT, ESL_ARGUMENT, FS_CHANNEL_VARIABLE,
                                                    CSV_CELL, LOG_LINE, TERMINAL)}


def as_text(value: object) -> str:
    """Any value as text; bytes are read as UTF-8 with replacement characters, so invalid input cannot fail."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    return value if type(value) is str else str(value)


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _neutralise(text: str, profile: Profile) -> str:
    if profile.unsafe == "line":
        return _LINE_UNSAFE.sub(profile.replacement, text)
    if text.isprintable():           # no control, format (bidi included) or separator character: the usual case
        return text
    if profile.unsafe == "nonprintable":
        unsafe = [not ch.isprintable() for ch in text]
    else:
        unsafe = [unicodedata.category(ch) in _FORMAT_CATEGORIES for ch in text]
    if profile.replacement == "escape":
        return "".join(_escape(ch) if bad else ch for ch, bad in zip(text, unsafe))
    return "".join(profile.replacement if bad else ch for ch, bad in zip(text, unsafe))


def cut_utf8(text: str, max_bytes: int) -> str:
    """At most `max_bytes` of UTF-8, never cutting a character in half (a lone surrogate becomes ``?``)."""
    raw = text.encode("utf-8", errors="replace")
    if len(raw) <= max_bytes:
        return raw.decode("utf-8")
    return raw[:max_bytes].decode("utf-8", errors="ignore")


def clean(value: object, profile: Profile, max_bytes: int | None = None) -> str:
    """`value` made safe for `profile`'s destination (`max_bytes` overrides the profile's bound)."""
    text = _neutralise(as_text(value), profile)
    if profile.collapse:
        text = " ".join(text.split())
    elif profile.strip:
        text = text.strip()
    for old, new in profile.swaps:
        if old in text:
            text = text.replace(old, new)
    if profile.formula and text[:1] in _FORMULA_START:
        text = "'" + text
    bound = max_bytes if max_bytes is not None else profile.max_bytes
    if bound is not None:
        text = cut_utf8(text, bound)
        if profile.strip or profile.collapse:
            text = text.rstrip()
    return text


def csv_cell(value: object) -> str:
    """A value pbx-codes writes into a CSV cell, formula-neutralised (see `CSV_CELL`)."""
    text = value if type(value) is str else as_text(value)
    if text[:1] in _FORMULA_START:
        return "'" + text
    return text


class SafeLogFormatter(logging.Formatter):
    """A formatter whose every record is one line: the message through `LOG_LINE`, and the lines of a traceback
    (which may quote network text in its exception message) escaped too and indented, so no line of one can be
    taken for a record."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = clean(record.message, LOG_LINE)
        return super().formatMessage(record)

    def formatException(self, ei: ExcInfo) -> str:
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _indented(super().formatStack(stack_info))


def _indented(block: str) -> str:
    return "\n".join("  " + clean(line, LOG_LINE) for line in block.splitlines())


__all__ = ["AGI_ARGUMENT", "AMI_VALUE", "CSV_CELL", "ESL_ARGUMENT", "FS_CHANNEL_VARIABLE", "LOG_LINE", "PROFILES",
           "Profile", "SafeLogFormatter", "TERMINAL", "as_text", "clean", "csv_cell", "cut_utf8"]
