"""What the console sends about a hangup or an alert: JSON-ready dicts with the number masked unless configured.

Operators need to tell calls apart, not to read full subscriber numbers off a wall screen, so a number keeps only
its last four digits by default. Every other text goes out as data; the page renders it with textContent only.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from enum import Enum
from typing import Any

from pbx_codes.model import LANGS, Annotation, Side

KEEP_DIGITS = 4
MASK = "*"


_HIDE_ASCII = str.maketrans("0123456789", MASK * 10)


def mask_number(number: str | None, keep: int = KEEP_DIGITS) -> str | None:
    """Replace every digit but the last `keep` with `*`; other characters (`+`, spaces) stay, so the shape shows."""
    if not number:
        return number
    if number.isascii():  # the usual number, once per hangup of the live feed: cut before the kept digits
        cut, kept = len(number), 0
        while cut > 0 and kept < keep:
            cut -= 1
            if number[cut].isdigit():
                kept += 1
        if kept < keep:
            return number
        return number[:cut].translate(_HIDE_ASCII) + number[cut:]
    digits = sum(ch.isdigit() for ch in number)
    to_hide = max(0, digits - keep)
    out = []
    for ch in number:
        if ch.isdigit() and to_hide:
            out.append(MASK)
            to_hide -= 1
        else:
            out.append(ch)
    return "".join(out)


def hangup_event(row: Mapping[str, Any], show_numbers: bool = False) -> dict[str, Any]:
    """One feed row from an annotation's dict (the bus or the store): the fields the page shows, number masked."""
    texts = row.get("texts") or {}
    return {
        "pbx": row.get("pbx"),
        "instance": row.get("instance"),
        "trunk": row.get("trunk"),
        "number": row.get("number") if show_numbers else mask_number(row.get("number")),
        "code": row.get("code"),
        "sip": row.get("sip"),
        "q850": row.get("q850") if row.get("q850") is not None else row.get("observed_q850"),
        "phrase": row.get("phrase"),
        "catalog": row.get("catalog"),
        "category": row.get("category"),
        "retry": row.get("retry"),
        "fault": row.get("fault"),
        "hangup_by": row.get("hangup_by"),
        "match_kind": row.get("match_kind"),
        "texts": {lang: str(texts.get(lang) or texts.get("en") or next(iter(texts.values()), "")) for lang in LANGS}
        if texts else {lang: "" for lang in LANGS},
        "linkedid": row.get("linkedid"),
        "uniqueid": row.get("uniqueid"),
        "channel": row.get("channel"),
        "time": row.get("timestamp") if row.get("timestamp") is not None else row.get("time"),
    }


def annotation_event(annotation: Annotation, show_numbers: bool = False, now: float | None = None) -> dict[str, Any]:
    """A hangup event straight off the bus (what `hangup_event` makes of `annotation.to_dict()`, read from the
    annotation's fields directly: it runs for every hangup the console shows); a leg the PBX gave no time gets the
    time it was seen."""
    obs, res = annotation.observation, annotation.resolution
    texts = res.texts
    number = obs.number
    fault = res.fault
    return {
        "pbx": obs.pbx or None,
        "instance": obs.instance,
        "trunk": obs.trunk,
        "number": number if show_numbers else mask_number(number),
        "code": res.code,
        "sip": res.sip,
        "q850": res.q850 if res.q850 is not None else obs.q850,
        "phrase": res.phrase,
        "catalog": res.catalog,
        "category": res.category.value,
        "retry": res.retry.value,
        "fault": fault.value if fault else None,
        "hangup_by": (obs.hangup_by or Side.UNKNOWN).value,
        "match_kind": res.match_kind,
        "texts": {lang: str(texts.get(lang) or texts.get("en") or next(iter(texts.values()), "")) for lang in LANGS}
        if texts else {lang: "" for lang in LANGS},
        "linkedid": obs.call_id,
        "uniqueid": obs.leg_id,
        "channel": obs.channel,
        "time": obs.timestamp if obs.timestamp is not None else time.time() if now is None else now,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def alert_event(alert: Any) -> dict[str, Any]:
    """An alert fired/cleared record (dataclass, mapping or object with `to_dict`) as a JSON-ready dict.

    The page needs `state` (fired|cleared), `name`, a `message` and a `time`; whatever else the alert carries
    (trunk, category, rate, threshold) is passed through for the details line.
    """
    if hasattr(alert, "to_dict"):
        data = dict(alert.to_dict())
    elif is_dataclass(alert) and not isinstance(alert, type):
        data = asdict(alert)
    elif isinstance(alert, Mapping):
        data = dict(alert)
    else:
        data = {k: getattr(alert, k) for k in dir(alert) if not k.startswith("_") and not callable(getattr(alert, k))}
    data = {str(k): _plain(v) for k, v in data.items()}  # what _plain does to a mapping, typed
    state = data.get("state") or data.get("kind") or data.get("event") or ("fired" if data.get("fired") else None)
    if state is None and "active" in data:
        state = "fired" if data["active"] else "cleared"
    data["state"] = str(state or "fired")
    data.setdefault("name", data.get("rule") or data.get("alert") or "alert")
    data.setdefault("message", data.get("text") or data.get("description") or "")
    if data.get("time") is None:
        data["time"] = data.get("timestamp") or data.get("at") or time.time()
    return data


__all__ = ["KEEP_DIGITS", "alert_event", "annotation_event", "hangup_event", "mask_number"]
