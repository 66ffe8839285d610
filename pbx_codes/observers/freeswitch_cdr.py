"""FreeSWITCH's own CDRs -> the channel-variable mappings the FreeSWITCH observer reads.

mod_json_cdr writes one document per leg: ``variables`` holds every channel variable, ``callflow`` the profile and
times. With its default ``encode-values=true`` every value is URL-encoded (``Not%20enough%20money``); with
``encode-values=false`` values are plain JSON strings. A reader must not decode a plain document (a literal ``%41``
would become ``A``) and must decode an encoded one, so the form is decided per document: FreeSWITCH's encoder always
encodes a space, ``:`` and ``@``, and every leg has values with them (``start_stamp`` is ``2026-12-01 09:06:18``),
so a document in which no value holds one of them, and some value holds a ``%XX`` escape, is encoded.

mod_cdr_csv lines in the project's ``pbx_codes`` template carry far less (no phrase, no disposition): what they
hold is mapped to the same variable names.
"""
from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from pbx_codes.observers.freeswitch import parent_of

_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_ALWAYS_ENCODED = (" ", ":", "@")
#: callflow times (microseconds) -> the variable FreeSWITCH also sets, when the variables lack it.
_CALLFLOW_TIMES = {"created_time": "start_uepoch", "progress_time": "progress_uepoch",
                   "progress_media_time": "progress_media_uepoch", "answered_time": "answer_uepoch",
                   "hangup_time": "end_uepoch"}


def is_url_encoded(values: Mapping[str, Any]) -> bool:
    """Whether a json_cdr document's variables were written with ``encode-values=true``."""
    escaped = False
    for value in values.values():
        if not isinstance(value, str):
            continue
        if any(ch in value for ch in _ALWAYS_ENCODED):
            return False
        if not escaped and "%" in value and _ESCAPE.search(value):
            escaped = True
    return escaped


def decoded_variables(values: Mapping[str, Any]) -> dict[str, str]:
    """The variables as plain text, whichever form the document was written in."""
    strings = {str(k): v if isinstance(v, str) else ("" if v is None else str(v)) for k, v in values.items()}
    if is_url_encoded(strings):
        return {k: unquote(v, errors="replace") for k, v in strings.items()}
    return strings


def variables_from_json_cdr(doc: Any) -> dict[str, str] | None:
    """One mod_json_cdr document -> its channel variables (decoded), or None when it is not one."""
    if not isinstance(doc, dict) or not isinstance(doc.get("variables"), dict):
        return None
    variables = decoded_variables(doc["variables"])
    channel = doc.get("channel_data")
    if isinstance(channel, dict) and isinstance(channel.get("direction"), str):
        variables.setdefault("direction", channel["direction"])
    flows = doc.get("callflow")
    flow = flows[0] if isinstance(flows, list) and flows else flows
    if isinstance(flow, dict):
        profile = flow.get("caller_profile")
        if isinstance(profile, dict):
            for key, name in (("uuid", "uuid"), ("chan_name", "channel_name"),
                              ("destination_number", "destination_number")):
                if isinstance(profile.get(key), str) and profile[key]:
                    variables.setdefault(name, unquote(profile[key]) if "%" in profile[key] else profile[key])
        times = flow.get("times")
        if isinstance(times, dict):
            for key, name in _CALLFLOW_TIMES.items():
                if str(times.get(key) or "0") != "0":
                    variables.setdefault(name, str(times[key]))
    return variables if variables.get("uuid") else None


def variables_from_cdr_csv(record: Mapping[str, str]) -> dict[str, str]:
    """One mod_cdr_csv record (the ``pbx_codes`` template's fields by name) -> channel variables.

    The template has no A-leg copy of the bridged leg's answer (``last_bridge_*``): where FreeSWITCH's own fields
    say nothing, the code and phrase the hook wrote (``pbx_code``, ``pbx_phrase``) stand for them, and the catalog
    it used."""
    out = {k: v for k, v in record.items() if v and not k.startswith("pbx_")}
    if record.get("pbx_catalog"):
        out["pbx_codes_catalog"] = record["pbx_catalog"]
    code = record.get("pbx_code") or ""
    if code.isdecimal() and len(code) == 3 and not out.get("sip_term_status"):
        out["sip_invite_failure_status"] = code
        if record.get("pbx_phrase"):
            out["sip_invite_failure_phrase"] = record["pbx_phrase"]
    stamp = {"start_stamp": "start_epoch", "answer_stamp": "answer_epoch", "end_stamp": "end_epoch"}
    for name, epoch in stamp.items():
        seconds = _stamp_seconds(record.get(name))
        if seconds:
            out[epoch] = str(seconds)
    return out


def _stamp_seconds(value: str | None) -> int | None:
    """mod_cdr_csv's ``2026-12-01 09:06:18`` (FreeSWITCH's local time) as epoch seconds."""
    if not value:
        return None
    try:
        return int(time.mktime(time.strptime(value.strip()[:19], "%Y-%m-%d %H:%M:%S")))
    except ValueError:
        return None


def _number(value: str | None) -> int:
    return int(value) if value and value.isdecimal() and len(value) <= 20 else 0


def leg_start(v: Mapping[str, str]) -> tuple[int, str]:
    """Order in which the legs began (B-legs after the A-leg that created them; attempts in order)."""
    return (_number(v.get("start_uepoch")) or _number(v.get("start_epoch")) * 1_000_000, v.get("start_stamp", ""))


def leg_end(v: Mapping[str, str]) -> tuple[int, str, int]:
    """Order in which the legs ended; at the same microsecond a B-leg before the A-leg that bridged it (FreeSWITCH
    ends B first: A carries its outcome)."""
    return (_number(v.get("end_uepoch")) or _number(v.get("end_epoch")) * 1_000_000, v.get("end_stamp", ""),
            0 if parent_of(v) else 1)


__all__ = ["decoded_variables", "is_url_encoded", "leg_end", "leg_start", "variables_from_cdr_csv",
           "variables_from_json_cdr"]
