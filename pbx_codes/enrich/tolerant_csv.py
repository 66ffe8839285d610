"""Reading and writing mod_cdr_csv lines, whose quotes are not escaped.

Why a reader of its own: mod_cdr_csv expands a template such as ``"${uuid}","${sip_reason}",...`` and does not
escape anything inside a value, so a carrier's ``Reason: Q.850;cause=31;text="NORMAL_UNSPECIFIED"`` becomes
``"...","Q.850;cause=31;text="NORMAL_UNSPECIFIED"",...``. A strict CSV reader takes the inner quote as the end of
the field and silently glues or shifts fields (Python's csv module gives ``text=NORMAL_UNSPECIFIED""``), so a cause
would be read from the wrong column.

What the template does guarantee is the separator: every field is written as ``"`` value ``"`` and the fields are
joined by ``","``. So a line that starts and ends with a quote is split on ``","`` and accepted when the field count
fits the layout; a value would have to contain ``","`` itself to be misread, and then the count does not fit and
the line is counted as malformed instead of being guessed at. A line that is not in that shape (an unquoted
template) goes to the standard CSV reader. Records are one per line: mod_cdr_csv writes them so.

Writing keeps the dialect: the original fields are joined back byte for byte, and the values enrich adds are
quote-free (see `RowAnnotator.quote_free`), so the output reads back the same way.
"""
from __future__ import annotations

import csv
from collections.abc import Collection

SEPARATOR = b'","'
QUOTE = b'"'


def split_line(body: bytes, lengths: Collection[int] | None = None) -> list[bytes] | None:
    """The fields of one line (without its end of line), or None when it does not fit any accepted length
    (`lengths` None: any length)."""
    if len(body) >= 2 and body[:1] == QUOTE and body[-1:] == QUOTE:
        fields = body[1:-1].split(SEPARATOR)
        if lengths is None or len(fields) in lengths:
            return fields
    try:
        parsed = next(csv.reader([body.decode("utf-8", errors="surrogateescape")]), [])
    except csv.Error:
        return None
    if parsed and (lengths is None or len(parsed) in lengths):
        return [f.encode("utf-8", errors="surrogateescape") for f in parsed]
    return None


def join_line(fields: list[bytes]) -> bytes:
    """One line in mod_cdr_csv's form: every field quoted, nothing escaped (without the end of line)."""
    return QUOTE + SEPARATOR.join(fields) + QUOTE


__all__ = ["join_line", "split_line"]
