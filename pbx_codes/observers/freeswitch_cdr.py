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
from typing import Any, Mapping
from urllib.parse import unquote

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
    """One mod_cdr_csv record (the ``pbx_codes`` template's fields by name) -> channel variables."""
    out = {k: v for k, v in record.items() if v and not k.startswith("pbx_") or k == "pbx_codes_catalog"}
    if record.get("pbx_catalog") and not out.get("pbx_codes_catalog") and record.get("sip_gateway_name"):
        out["pbx_codes_catalog"] = record["pbx_catalog"]   # the catalog the leg was annotated with, live
    out["cdr_csv"] = "1"
    return out


def _number(value: str | None) -> int:
    return int(value) if value and value.isdecimal() and len(value) <= 20 else 0


def leg_start(v: Mapping[str, str]) -> tuple[int, str]:
    """Order in which the legs began (B-legs after the A-leg that created them; attempts in order)."""
    return (_number(v.get("start_uepoch")) or _number(v.get("start_epoch")) * 1_000_000, v.get("start_stamp", ""))


def leg_end(v: Mapping[str, str]) -> tuple[int, str]:
    """Order in which the legs ended."""
    return (_number(v.get("end_uepoch")) or _number(v.get("end_epoch")) * 1_000_000, v.get("end_stamp", ""))


__all__ = ["decoded_variables", "is_url_encoded", "leg_end", "leg_start", "variables_from_cdr_csv",
           "variables_from_json_cdr"]
