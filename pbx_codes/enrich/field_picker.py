"""Reading only the fields a row's annotation needs, straight from the line's bytes, for layouts that append.

Why: stock Master.csv is what a strict CSV parser is slowest on. Its caller ID is written with doubled quotes
(``""Name"" <1000>`` inside the field's own quotes) and its duration and billsec unquoted, so splitting on ``","``
never fits and every row used to go through ``csv.reader``, which builds a text object for each of its 16-18
fields. An appending layout needs only a few of them (the key columns, the dialed channel, and the two fields the
"already annotated" check looks at), because the row's own bytes are written back untouched with the pbx_* values
after them.

A `FieldPicker` is one compiled pattern per field count: it must match the whole line, field by field, in exactly
the grammar ``csv.reader`` reads the same way (a field is either ``"..."`` with quotes doubled, or bare text with
no quote, comma or line end), and it captures only the needed fields. That grammar can be read only one way, so a
line the pattern accepts gives the same values ``csv.reader`` would; a line it does not accept (another field
count, a record going on in the next line, a bare field with a quote in it, a needed field with a quote in it) is
left to the reader. Captured values are bytes, like the fields of the plain ``","`` split.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from pbx_codes.enrich.interpret import KeyPlan
from pbx_codes.observers.channels import ASTERISK_SUFFIX_BYTES

#: Any field, not captured: quoted (quotes doubled inside) or bare.
_ANY_FIELD = rb'(?:"[^"]*+(?:""[^"]*+)*+"|[^",\r\n]*+)'
#: A needed field, its value captured in one group (the first group says whether it is quoted): quoted without a
#: quote inside, or bare. (A needed value holding a quote is rare enough to be left to the reader, which unescapes.)
_NEEDED_FIELD = rb'(")?((?(%(f)d)[^"]*+|[^",\r\n]*+))(?(%(f)d)")'
#: A dialed channel: the whole value, and either its stem before Asterisk's ``-`` + 8 hex digits (``;1`` on Local
#: channels) suffix, or (any other name) the whole name again. The trunk is a function of the stem, so rows of one
#: trunk share a cache entry although every channel name is new.
_CHANNEL_FIELD = (rb'(")?(((?(%(f)d)[^"]*|[^",\r\n]*))-' + ASTERISK_SUFFIX_BYTES.pattern
                  + rb'|((?(%(f)d)[^"]*+|[^",\r\n]*+)))(?(%(f)d)")')
_LINE_END = rb'(?:\r?\n)?'


@dataclass(frozen=True, slots=True)
class FieldPicker:
    """The pattern for lines of `count` fields, and what to do with the values it captures.

    Per row: ``values = match(raw).group(*groups)``; `is_done(values)` answers as the engine's done check would for
    the full row; ``values[skip:]`` is the row's cache key within this layout (its key fields and, per dialed
    channel, the stem or the whole name). Only for a cache key seen for the first time, `key_of(match)` gives the
    key `KeyPlan.row_key()` gives for the full row.
    """

    count: int
    match: Callable[[bytes], re.Match[bytes] | None]
    groups: tuple[int, ...]
    skip: int
    is_done: Callable[[Sequence[Any]], bool]
    key_of: Callable[[re.Match[bytes]], tuple[Any, ...]]

    @classmethod
    def build(cls, count: int, plan: KeyPlan, done_from_end: tuple[int, int] | None, done_min_len: int,
              categories: Collection[Any], retries: Collection[Any]) -> FieldPicker:
        """`done_from_end`: (category, retry) positions counted from the row's end, as the engine's done check for
        an appended block reads them; a row is checked only when it is longer than `done_min_len`."""
        done_at: tuple[int, int] | None = None
        if done_from_end is not None and count > done_min_len:
            done_at = (count - done_from_end[0], count - done_from_end[1])
        channels = set(plan.channel)
        needed = set(plan.positions) | channels | set(done_at or ())
        if not needed or max(needed) >= count:
            raise ValueError(f"a line of {count} fields does not hold every needed field")
        parts: list[bytes] = []
        value_group: dict[int, int] = {}            # field position -> the group holding its whole value
        stem_groups: dict[int, tuple[int, int]] = {}  # channel position -> (stem group, whole-name group)
        group = 0
        for position in range(count):
            if position in channels:
                parts.append(_CHANNEL_FIELD % {b"f": group + 1})
                value_group[position] = group + 2
                stem_groups[position] = (group + 3, group + 4)
                group += 4
            elif position in needed:
                parts.append(_NEEDED_FIELD % {b"f": group + 1})
                value_group[position] = group + 2
                group += 2
            else:
                parts.append(_ANY_FIELD)
        pattern = re.compile(b",".join(parts) + _LINE_END)

        done_only = [p for p in (done_at or ()) if p not in plan.positions]
        groups = [value_group[p] for p in done_only] + [value_group[p] for p in plan.positions]
        for position in plan.channel:
            groups.extend(stem_groups[position])
        skip = len(done_only)
        if len(groups) == 1:
            groups.append(groups[0])  # match.group() of one group gives no tuple; the copy only lengthens the key

        if done_at is None:
            def is_done(values: Sequence[Any]) -> bool:
                return False
        else:
            def index(position: int) -> int:
                return done_only.index(position) if position in done_only else skip + plan.positions.index(position)
            cat, retry = index(done_at[0]), index(done_at[1])

            def is_done(values: Sequence[Any]) -> bool:
                return values[retry] in retries and values[cat] in categories

        # The full row's key, from a row of just the key fields and the channels' whole names.
        full = [value_group[p] for p in plan.positions] + [value_group[p] for p in plan.channel]
        width = len(plan.positions)
        compact = KeyPlan(tuple(range(width)), plan.slices, tuple(range(width, len(full))))
        row_key = compact.row_key()
        if len(full) == 1:
            only = full[0]

            def key_of(m: re.Match[bytes]) -> tuple[Any, ...]:
                return row_key((m.group(only),))
        else:
            def key_of(m: re.Match[bytes]) -> tuple[Any, ...]:
                return row_key(m.group(*full))
        return cls(count, pattern.fullmatch, tuple(groups), skip, is_done, key_of)


__all__ = ["FieldPicker"]
