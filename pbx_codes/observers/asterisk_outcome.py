"""How an Asterisk Dial attempt ended, decided the same way from AMI events and from the FastAGI hangup handler.

Both paths see the same few facts about a dialed leg, each in its own words; `LegFacts` is those facts and
`decide` is the one place that turns them into code, phrase, Q.850 cause, `Outcome`, certainty and who hung up, so
the CDR (FastAGI) and the store (AMI) cannot disagree. What Asterisk 22 shows for each shape (measured on the bench):

============================  =========================  ===========================  ===========================
shape                          ``HANGUPCAUSE(<B>,tech)``  DIALSTATUS (dialplan / AMI)  B-leg cause (AMI)
============================  =========================  ===========================  ===========================
carrier's final response       ``SIP 503 <phrase>``       BUSY, CONGESTION, ...        Q.850 + TechCause
trunk unreachable (timer B)    no entry                   CHANUNAVAIL / NOANSWER       18, TechCause 408
trunk silent, dial timeout     no entry                   NOANSWER                     0
qualify-down, no route         no B channel at all        CHANUNAVAIL / (no events)    -
ring, dial timeout             ``SIP 180 Ringing``        NOANSWER                     0
caller cancel                  last provisional           CANCEL                       127, TechCause 500
answered                       ``SIP 200 OK``             ANSWER                       16
============================  =========================  ===========================  ===========================

A timer or a response Asterisk made up itself carries no status line from the carrier: its code (``408``) is
Asterisk's, so it is reported with ``certain=False`` (``pbx_exact=0``). Shapes with no cause of their own get the
Q.850 cause that names them (18 no user responding, 19 alerted but no answer, 3 no route), so the reason reads
right in every language.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pbx_codes.model import Outcome, Side
from pbx_codes.protocols import safe_value

_TECH_CAUSE = re.compile(r"^\s*[A-Za-z0-9_]+\s+(\d{3})(?:\s+(.*))?$", re.S)
PHRASE_MAX_BYTES = 512

#: Q.850 causes that name a shape when Asterisk reports none of its own.
Q850_NO_ROUTE = 3
Q850_NO_USER_RESPONDING = 18
Q850_NO_ANSWER = 19
Q850_NORMAL = 16
Q850_CANCELLED = 127
#: The code a SIP stack makes up when no final response came in time.
LOCAL_TIMEOUT_CODE = "408"


def parse_tech_cause(value: str | None) -> tuple[str | None, str | None]:
    """``SIP 409 Not enough money`` -> (``409``, ``Not enough money``); anything else -> (None, None)."""
    if not value:
        return None, None
    match = _TECH_CAUSE.match(value)
    if match is None:
        return None, None
    phrase = safe_value(match.group(2), PHRASE_MAX_BYTES) if match.group(2) else None
    return match.group(1), phrase or None


@dataclass(frozen=True, slots=True)
class LegFacts:
    """What a path knows about one dialed leg at its end."""

    dial_status: str | None
    #: ``HANGUPCAUSE(<B>,tech)`` (``SIP 486 Busy Here``); "" when Asterisk holds none for the leg (no response came
    #: from the carrier); None when the path could not ask (AMI: the calling channel was already gone).
    tech: str | None
    #: Did Dial create the leg at all (a B channel exists)?
    has_leg: bool = True
    #: Did the leg ring or make progress (18x)? Only AMI knows this apart from the tech cause (``DialState``).
    rang: bool = False
    #: The leg's own Q.850 cause and SIP TechCause, when the path saw them (AMI: the B-leg's HangupRequest/Hangup).
    cause: int | None = None
    tech_cause: int | None = None
    #: Who ended an answered leg, as the path saw it.
    hangup_by: Side | None = None


@dataclass(frozen=True, slots=True)
class LegVerdict:
    code: str | None
    phrase: str | None
    q850: int | None
    outcome: Outcome | None
    certain: bool
    hangup_by: Side


def decide(facts: LegFacts) -> LegVerdict:
    """The one decision table of both Asterisk paths (see the module docstring)."""
    status = (facts.dial_status or "").upper()
    code, phrase = parse_tech_cause(facts.tech)
    final = code is not None and int(code) >= 300
    if status == "ANSWER":
        return LegVerdict("200", None, Q850_NORMAL, Outcome.ANSWERED, True, facts.hangup_by or Side.UNKNOWN)
    if status == "CANCEL":
        # Asterisk 22 ends a cancelled leg with cause 127 (AMI); the dialplan only holds the last provisional's.
        return LegVerdict("487", None, Q850_CANCELLED, Outcome.CALLER_CANCEL, True, Side.CALLER)
    if not facts.has_leg:
        if status in ("CHANUNAVAIL", "CONGESTION"):  # Dial could not create the leg: no INVITE was sent
            return LegVerdict(None, None, Q850_NO_ROUTE, Outcome.UNREACHABLE, True, Side.LOCAL)
        return LegVerdict(None, None, facts.cause, None, False, Side.UNKNOWN)
    if final:
        return LegVerdict(code, phrase, facts.cause, Outcome.CARRIER_FINAL, True, Side.CARRIER)
    if facts.tech is None and facts.tech_cause is not None and facts.tech_cause >= 300:
        # AMI could not read the phrase: the TechCause may be the carrier's or Asterisk's own; no way to tell.
        return LegVerdict(str(facts.tech_cause), None, facts.cause, None, False, Side.CARRIER)
    provisional = code is not None and code != "100"
    if provisional or (facts.rang and facts.tech is None):
        return LegVerdict(None, None, Q850_NO_ANSWER, Outcome.RING_TIMEOUT, True, Side.LOCAL)
    if facts.tech is None:
        if status == "NOANSWER" or facts.cause == Q850_NO_USER_RESPONDING:
            return LegVerdict(LOCAL_TIMEOUT_CODE, None, Q850_NO_USER_RESPONDING, Outcome.LOCAL_RESPONSE, False,
                              Side.LOCAL)
        return LegVerdict(None, None, facts.cause, None, False, Side.UNKNOWN)
    # No status line from the carrier at all (or only 100 Trying): Asterisk's timer B or the dial timeout ended it.
    return LegVerdict(LOCAL_TIMEOUT_CODE, None, Q850_NO_USER_RESPONDING, Outcome.LOCAL_RESPONSE, False, Side.LOCAL)


__all__ = ["LegFacts", "LegVerdict", "decide", "parse_tech_cause"]
