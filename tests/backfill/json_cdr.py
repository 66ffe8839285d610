"""mod_json_cdr documents made from a real capture: each leg's CHANNEL_HANGUP_COMPLETE variables, written as
FreeSWITCH writes them (``variables``, ``channel_data``, ``callflow`` with ``times``), in either encode-values form."""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from pbx_codes.observers.freeswitch import iter_events

# What switch_url_encode leaves alone; everything else (space, ':', '@', '%', quotes, non-ASCII) is %XX.
_SAFE = "-_.!~*'()/,$"


def legs_of(capture: bytes) -> list[dict]:
    """The final variables of every leg in an ESL capture (plain or JSON), in hangup order."""
    out = []
    for event in iter_events(capture):
        if event.name == "CHANNEL_HANGUP_COMPLETE":
            out.append(dict(event.headers))
    return out


def json_cdr_document(headers: dict, *, encode_values: bool) -> dict:
    variables = {k[9:]: v for k, v in headers.items() if k.startswith("variable_") and isinstance(v, str)}
    if encode_values:
        variables = {k: quote(v, safe=_SAFE) for k, v in variables.items()}
    times = {"created_time": headers.get("Caller-Channel-Created-Time", "0"),
             "progress_time": headers.get("Caller-Channel-Progress-Time", "0"),
             "answered_time": headers.get("Caller-Channel-Answered-Time", "0"),
             "hangup_time": headers.get("Caller-Channel-Hangup-Time", "0")}
    return {"core-uuid": headers.get("Core-UUID"), "switchname": "vm",
            "channel_data": {"state": "CS_REPORTING", "direction": headers.get("Call-Direction")},
            "variables": variables,
            "callflow": [{"caller_profile": {"uuid": headers.get("Unique-ID"),
                                             "chan_name": headers.get("Channel-Name"),
                                             "destination_number": headers.get("Caller-Destination-Number"),
                                             "caller_id_number": headers.get("Caller-Caller-ID-Number")},
                          "times": times}]}


def write_json_cdrs(folder: Path, captures: list[bytes], *, encode_values: bool) -> int:
    """One ``<uuid>.cdr.json`` per leg, as mod_json_cdr's log-dir holds them; returns how many."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for capture in captures:
        for headers in legs_of(capture):
            doc = json_cdr_document(headers, encode_values=encode_values)
            (folder / f"{headers['Unique-ID']}.cdr.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
            n += 1
    return n
