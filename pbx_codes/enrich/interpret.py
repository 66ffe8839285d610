"""A CDR row's raw cause fields -> the pbx_* values to add, computed once per distinct combination.

CDRs repeat: a day of calls holds a few hundred distinct (code, phrase, cause, disposition, catalog) combinations
among millions of rows. `RowAnnotator` therefore works on the *raw* values of the mapped columns as a tuple and
keeps the finished output for each tuple, so a row costs one dict lookup; parsing, the resolver and sanitizing run
only on a combination seen for the first time.

How much a row says decides how exact its annotation is:
- a SIP code (``sip_code``, or inside ``rawcause`` as ``SIP 409 Not enough money``): the resolver's full path;
- a Q.850 cause only: the resolver's Q.850 path (pbx_exact false);
- a disposition only: mapped to the Q.850 cause it implies and resolved as such (pbx_exact false); ``FAILED``
  implies none (Asterisk writes it for CHANUNAVAIL, for CONGESTION without ``congestion=yes`` and for anything
  else that did not connect), so such a row is annotated ``unknown`` rather than given a guessed reason;
- nothing at all: the row is left as it is and counted as skipped.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from pbx_codes.enrich.mapping import KEY_FIELDS
from pbx_codes.model import Annotation, Category, Observation, Retry
from pbx_codes.observers.asterisk import parse_tech_cause
from pbx_codes.observers.asterisk_causes import DISPOSITION_NO_CAUSE, DISPOSITION_Q850, asterisk_cause_q850
from pbx_codes.observers.causes import reason_q850, sip_code
from pbx_codes.observers.channels import ASTERISK_SUFFIX_BYTES, ASTERISK_SUFFIX_TEXT, trunk_of_channel
from pbx_codes.observers.freeswitch import HANGUP_CAUSE_Q850
from pbx_codes.protocols import MAX_VALUE_BYTES, safe_value

# What the kind of an annotation says about its source (counted in the summary).
EXACT, INEXACT, COARSE_Q850, COARSE_DISPOSITION, NO_CAUSE = "exact", "inexact", "coarse_q850", "coarse_disposition", \
    "no_cause"

_CODE_PAIR = re.compile(r"^\s*(\d{1,4}/\d{0,4})\s*$")
_SUFFIX_TEXT = ASTERISK_SUFFIX_TEXT.fullmatch
_SUFFIX_BYTES = ASTERISK_SUFFIX_BYTES.fullmatch
_PHRASE_MAX_BYTES = 512

CATEGORY_VALUES = frozenset(c.value for c in Category)
RETRY_VALUES = frozenset(r.value for r in Retry)


def parse_sip_code(value: str | None) -> str | None:
    """``486``, ``sip:486`` -> ``486``; a callback pair ``200/486`` as is; anything else None."""
    if not value:
        return None
    code = sip_code(value)
    if code:
        return code
    match = _CODE_PAIR.match(value)
    return match.group(1) if match else None


def parse_q850(value: str | None) -> int | None:
    """A Q.850 cause written any way a CDR writes one: ``17``, ``USER_BUSY``, ``User busy``, a Reason header."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():  # also true for '²', which int() refuses; and a long run of digits is no cause either
        number = int(text) if text.isdecimal() and len(text) <= 6 else 1000
        return number if number <= 127 else None  # above 127: a PBX's own cause (FreeSWITCH UNWANTED = 819)
    from_reason = reason_q850(text)
    if from_reason is not None:
        return from_reason
    named = HANGUP_CAUSE_Q850.get(text.upper())
    if named is not None:
        return named
    return asterisk_cause_q850(text)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The finished values for one raw combination: what to write, and what to count."""

    values: tuple[str, ...]    # in PBX_COLUMNS order; empty when there is nothing to write
    category: str              # a Category value, or "" when nothing was written
    kind: str                  # EXACT | INEXACT | COARSE_Q850 | COARSE_DISPOSITION | NO_CAUSE


NOTHING = Outcome((), "", NO_CAUSE)


@dataclass(frozen=True, slots=True)
class KeyPlan:
    """Where a row's key values are, and how the key tuple splits back into fields.

    `positions` index the row (in field order); `slices` say which part of the key tuple is which field. A dialed
    channel name is unique per call, so it never enters the key as such: `channel` positions are read separately
    and only the trunk derived from them joins the key, which keeps the cache small when trunks are bound.
    """

    positions: tuple[int, ...]
    slices: Mapping[str, tuple[int, int]]   # field -> (start, stop) inside the key tuple
    channel: tuple[int, ...] = ()

    @classmethod
    def build(cls, bound: Mapping[str, tuple[int, ...]], fields: Sequence[str]) -> KeyPlan:
        positions: list[int] = []
        slices: dict[str, tuple[int, int]] = {}
        for name in fields:
            found = bound.get(name, ())
            if found and name != "channel":
                slices[name] = (len(positions), len(positions) + len(found))
                positions.extend(found)
        # A recorded trunk column wins; the dialed channel is read only when the layout has none.
        channel = bound.get("channel", ()) if "channel" in fields and not bound.get("trunk") else ()
        return cls(tuple(positions), slices, tuple(channel))

    @property
    def empty(self) -> bool:
        return not self.positions and not self.channel

    def row_key(self) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
        """A fast row -> key function for list rows (csv.reader, database tuples)."""
        positions, channel = self.positions, self.channel
        getter: Callable[[Sequence[Any]], tuple[Any, ...]]
        if len(positions) > 1:
            getter = itemgetter(*positions)
        elif positions:
            only = positions[0]
            getter = lambda row: (row[only],)  # noqa: E731 - itemgetter of one index returns no tuple
        else:
            getter = lambda row: ()  # noqa: E731
        if not channel:
            return getter

        memo: dict[object, str | None] = {}

        def with_trunk(row: Sequence[Any]) -> tuple[Any, ...]:
            trunk = None
            suffix: Callable[[Any, int], object]  # a str or a bytes pattern's fullmatch, as the name is
            for i in channel:
                name = row[i]
                if not name:
                    continue
                # PJSIP/trunk-00000009: the trunk is what precedes Asterisk's channel suffix, so it is memoized on
                # that stem. Any other name (a FreeSWITCH gateway channel, DAHDI/1-2) is memoized whole: the part
                # after its last '-' may name the trunk too (sofia/gateway/gw-mango/380...).
                if type(name) is str:
                    cut = name.rfind("-")
                    suffix = _SUFFIX_TEXT
                else:
                    cut = name.rfind(b"-")
                    suffix = _SUFFIX_BYTES
                stem = name[:cut] if cut > 0 and suffix(name, cut + 1) else name
                trunk = memo.get(stem, memo)
                if trunk is memo:
                    if len(memo) > 4096:
                        memo.clear()
                    trunk = memo[stem] = trunk_of_channel(_text(name))
                if trunk:
                    break
            return getter(row) + (trunk,)
        return with_trunk

    def fields_of(self, key: Sequence[object]) -> dict[str, list[str]]:
        fields = {name: [_text(v) for v in key[a:b] if v is not None and v != "" and v != b""]
                  for name, (a, b) in self.slices.items()}
        if self.channel and key and key[-1]:
            fields["channel_trunk"] = [_text(key[-1])]
        return fields


def _text(value: object) -> str:
    """A raw value as text: bytes (the byte-level readers' fields) as UTF-8, anything else (JSON numbers) by str.

    Bytes decode the way the CSV engine decodes a line for ``csv.reader`` (surrogateescape), so a field gives the
    same annotation whichever reader read it, invalid UTF-8 included."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="surrogateescape")
    return value if isinstance(value, str) else str(value)


class RowAnnotator:
    """Raw key tuple -> Outcome, through the resolver, with a bounded cache of finished outcomes.

    `quote_free` replaces double quotes in written values (for mod_cdr_csv, which would not escape them);
    `exact_words` is how this PBX spells pbx_exact (Asterisk ``1``/``0``, FreeSWITCH ``true``/``false``).
    """

    def __init__(self, resolve: Callable[[Observation], Annotation], *, lang: str = "en", pbx: str = "asterisk",
                 use_trunk: bool = False, quote_free: bool = False, max_bytes: int = MAX_VALUE_BYTES,
                 cache_limit: int = 200_000) -> None:
        self._resolve = resolve
        self.lang = lang
        self.pbx = pbx
        self.use_trunk = use_trunk
        self.quote_free = quote_free
        self.max_bytes = max_bytes
        self.exact_words = ("1", "0") if pbx == "asterisk" else ("true", "false")
        self.cache: dict[tuple[Any, ...], Outcome] = {}
        self.cache_limit = cache_limit

    def key_fields(self) -> tuple[str, ...]:
        """The fields that make up the key: trunk and channel only matter when trunks are bound to catalogs."""
        return KEY_FIELDS if self.use_trunk else tuple(f for f in KEY_FIELDS if f not in ("trunk", "channel"))

    def outcome(self, plan: KeyPlan, key: tuple[Any, ...]) -> Outcome:
        """The cached outcome for a key tuple (as `plan` laid it out)."""
        found = self.cache.get(key)
        if found is None:
            if len(self.cache) >= self.cache_limit:
                self.cache.clear()
            found = self.cache[key] = self.compute(plan.fields_of(key))
        return found

    def observation(self, fields: Mapping[str, list[str]]) -> tuple[Observation | None, str]:
        """(Observation, kind) for one combination of raw values, or (None, NO_CAUSE)."""
        # A provisional code (a CANCELled call's last 180) is not how a call ended: it explains nothing.
        code = next((c for c in map(parse_sip_code, fields.get("sip_code", ())) if c and c >= "2"), None)
        phrase = next(iter(fields.get("phrase", ())), None)
        for raw in fields.get("rawcause", ()):
            raw_code, raw_phrase = parse_tech_cause(raw)
            if raw_code is None or raw_code < "200":
                continue
            if code is None:
                code = raw_code
            if phrase is None and raw_code == code:
                phrase = raw_phrase
            break
        q850 = next((q for q in map(parse_q850, fields.get("q850", ())) if q is not None), None)
        catalog = next(iter(fields.get("catalog", ())), None)
        trunk = next(iter(fields.get("trunk", ())), None)
        if trunk is None and self.use_trunk:
            trunk = next(iter(fields.get("channel_trunk", ())), None)
        phrase = safe_value(phrase, _PHRASE_MAX_BYTES) or None if phrase else None
        kind = EXACT
        if code is None:
            if q850 is not None:
                kind = COARSE_Q850
            else:
                disposition = next(iter(fields.get("disposition", ())), "").strip().upper()
                if disposition in DISPOSITION_Q850:
                    q850, kind = DISPOSITION_Q850[disposition], COARSE_DISPOSITION
                elif disposition in DISPOSITION_NO_CAUSE:
                    kind = COARSE_DISPOSITION
                else:
                    return None, NO_CAUSE
        obs = Observation(sip_code=code, phrase=phrase if code else None, q850=q850, catalog=catalog, trunk=trunk,
                          method="INVITE" if code and code >= "300" else None, pbx=self.pbx)
        return obs, kind

    def compute(self, fields: Mapping[str, list[str]]) -> Outcome:
        obs, kind = self.observation(fields)
        if obs is None:
            return NOTHING
        ann = self._resolve(obs)
        exact = bool(ann.exact) and kind == EXACT
        if kind == EXACT and not exact:
            kind = INEXACT
        q850 = ann.q850 if ann.q850 is not None else obs.q850
        raw_values = (ann.catalog, ann.code, ann.phrase, ann.category.value, ann.retry.value, ann.text(self.lang),
                      q850, self.exact_words[0] if exact else self.exact_words[1])
        return Outcome(tuple(self.clean(v) for v in raw_values), ann.category.value, kind)

    def clean(self, value: object) -> str:
        """One written value: one line, bounded, and quote-free where the CDR writer would not escape quotes."""
        text = safe_value("" if value is None else value, self.max_bytes)
        if self.quote_free:
            text = text.replace('"', "'")
        return text


__all__ = ["CATEGORY_VALUES", "COARSE_DISPOSITION", "COARSE_Q850",
           "EXACT", "INEXACT", "KeyPlan", "NOTHING", "NO_CAUSE", "Outcome", "RETRY_VALUES", "RowAnnotator",
           "parse_q850", "parse_sip_code"]
