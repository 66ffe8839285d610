"""Cause and code readings shared by both observers and by the offline readers (enrich, backfill).

A call's end is given by number (Q.850, how Asterisk reports it) or by name (how FreeSWITCH reports it); both
views of "an ordinary end, not a failure" are here, side by side, so they cannot drift apart.
"""
from __future__ import annotations

import re

Q850_MAX = 127

#: Q.850 causes that are an ordinary end of a call, not a failure: 16 normal clearing, 0 none given.
NORMAL_Q850 = frozenset({0, 16})
#: The same by FreeSWITCH's names: NORMAL_CLEARING (16), NONE (0), its own SUCCESS (142), and no cause at all.
NORMAL_CAUSE_NAMES = frozenset({"", "NONE", "NORMAL_CLEARING", "SUCCESS"})

_SIP_CODE = re.compile(r"^\s*(?:sip:)?([1-6]\d\d)\s*$", re.IGNORECASE)
_REASON_CAUSE = re.compile(r"Q\.850\s*;\s*cause\s*=\s*(\d{1,3})", re.IGNORECASE)


def sip_code(value: str | None) -> str | None:
    """``486``, ``sip:486`` -> ``486`` (a final or provisional SIP code as a PBX variable writes it), else None."""
    if not value:
        return None
    match = _SIP_CODE.match(value)
    return match.group(1) if match else None


def reason_q850(sip_reason: str | None) -> int | None:
    """The cause of a ``Reason: Q.850;cause=17;text="User busy"`` header, or None (also for a number above 127)."""
    if not sip_reason:
        return None
    match = _REASON_CAUSE.search(sip_reason)
    number = int(match.group(1)) if match else None
    return number if number is not None and number <= Q850_MAX else None


__all__ = ["NORMAL_CAUSE_NAMES", "NORMAL_Q850", "Q850_MAX", "reason_q850", "sip_code"]
