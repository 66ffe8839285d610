"""Python's own string rules as PostgreSQL expressions, for the SQL export of the catalogs.

The resolver folds a carrier's phrase with `str.casefold` and `str.split`, reads digit classes with `str.isdigit`
and numbers with `str.isdecimal` + `int`. PostgreSQL's `lower()` and regex classes follow the server's locale and
its own Unicode version, so the export carries Python's tables instead: the SQL answer then equals the resolver's
for any text, whatever the server's locale.
"""
from __future__ import annotations

import sys
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class UnicodeTables:
    """The characters each rule concerns, read from this Python's `str` methods."""

    fold_from: str  # characters whose casefold is one character ...
    fold_to: str  # ... and that character, position by position
    fold_multi: tuple[tuple[str, str], ...]  # characters whose casefold is several (ß -> ss)
    spaces: tuple[int, ...]  # str.isspace
    digits: tuple[int, ...]  # str.isdigit
    decimals: str  # str.isdecimal ...
    decimal_values: str  # ... and the ASCII digit `int()` reads for each


def read_tables() -> UnicodeTables:
    """Scan every code point once (about half a second)."""
    fold_from, fold_to, multi, spaces, digits, decimals, values = [], [], [], [], [], [], []
    for point in range(sys.maxunicode + 1):
        if 0xD800 <= point <= 0xDFFF:
            continue  # surrogates: never in PostgreSQL text
        char = chr(point)
        folded = char.casefold()
        if folded != char:
            # Folded characters are themselves fixed points (checked here), so one pass of translate and
            # replace equals casefold; and no folded character is whitespace, so folding and splitting commute.
            if any(c.casefold() != c or c.isspace() for c in folded) or char.isspace():
                raise AssertionError(f"casefold of U+{point:04X} breaks the one-pass rule")
            if len(folded) == 1:
                fold_from.append(char)
                fold_to.append(folded)
            else:
                multi.append((char, folded))
        if char.isspace():
            spaces.append(point)
        if char.isdigit():
            digits.append(point)
        if char.isdecimal():
            decimals.append(char)
            values.append(str(unicodedata.decimal(char)))
    return UnicodeTables("".join(fold_from), "".join(fold_to), tuple(multi), tuple(spaces), tuple(digits),
                         "".join(decimals), "".join(values))


def _escape(point: int) -> str:
    return f"\\u{point:04x}" if point <= 0xFFFF else f"\\U{point:08x}"


def regex_class(points: tuple[int, ...]) -> str:
    """A bracket expression of PostgreSQL's regex dialect for these code points, as escapes (printable SQL)."""
    parts, start = [], None
    for i, point in enumerate(points):
        if start is None:
            start = point
        if i + 1 == len(points) or points[i + 1] != point + 1:
            parts.append(_escape(start) if start == point else f"{_escape(start)}-{_escape(point)}")
            start = None
    return "[" + "".join(parts) + "]"
