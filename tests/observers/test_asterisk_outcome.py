"""The one decision table of both Asterisk paths: the facts each path sees for a shape give that shape's answer."""
from __future__ import annotations

import pytest

from pbx_codes.model import Outcome, Side
from pbx_codes.observers.asterisk import AsteriskObserver
from pbx_codes.observers.asterisk_outcome import LegFacts, decide
from pbx_codes.protocols.ami import AmiParser, Event

# (facts as the FastAGI path sees them, facts as AMI sees them) -> (code, q850, outcome, certain, hangup_by),
# as measured on the real Asterisk 22 bench (see tests/integration/test_asterisk_shapes.py).
SHAPES = {
    "carrier final": (LegFacts("BUSY", "SIP 486 Busy Here", cause=17),
                      LegFacts("BUSY", "SIP 486 Busy Here", cause=17, tech_cause=486),
                      ("486", 17, Outcome.CARRIER_FINAL, True, Side.CARRIER)),
    "unreachable (timer)": (LegFacts("CHANUNAVAIL", ""), LegFacts("NOANSWER", "", cause=18, tech_cause=408),
                            ("408", 18, Outcome.LOCAL_RESPONSE, False, Side.LOCAL)),
    "silent (dial timeout)": (LegFacts("NOANSWER", ""), LegFacts("NOANSWER", "", cause=0),
                              ("408", 18, Outcome.LOCAL_RESPONSE, False, Side.LOCAL)),
    "only 100 Trying": (LegFacts("NOANSWER", "SIP 100 Trying"), LegFacts("NOANSWER", "SIP 100 Trying", cause=0),
                        ("408", 18, Outcome.LOCAL_RESPONSE, False, Side.LOCAL)),
    "qualify-down": (LegFacts("CHANUNAVAIL", "", has_leg=False), LegFacts("CHANUNAVAIL", "", has_leg=False),
                     (None, 3, Outcome.UNREACHABLE, True, Side.LOCAL)),
    "ring timeout": (LegFacts("NOANSWER", "SIP 180 Ringing"),
                     LegFacts("NOANSWER", "SIP 180 Ringing", rang=True, cause=0),
                     (None, 19, Outcome.RING_TIMEOUT, True, Side.LOCAL)),
    "caller cancel": (LegFacts("CANCEL", "SIP 180 Ringing", cause=16),
                      LegFacts("CANCEL", None, cause=127, tech_cause=500),
                      ("487", 127, Outcome.CALLER_CANCEL, True, Side.CALLER)),
    "answered, carrier hung up": (LegFacts("ANSWER", "SIP 200 OK", hangup_by=Side.CARRIER),
                                  LegFacts("ANSWER", None, cause=16, hangup_by=Side.CARRIER),
                                  ("200", 16, Outcome.ANSWERED, True, Side.CARRIER)),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_both_paths_facts_of_a_shape_give_the_same_answer(shape: str) -> None:
    agi, ami, expected = SHAPES[shape]
    for facts in (agi, ami):
        verdict = decide(facts)
        assert (verdict.code, verdict.q850, verdict.outcome, verdict.certain, verdict.hangup_by) == expected


def test_a_ring_seen_by_dialstate_is_a_ring_timeout_even_when_the_phrase_could_not_be_read() -> None:
    assert decide(LegFacts("NOANSWER", None, rang=True)).outcome is Outcome.RING_TIMEOUT


def test_a_final_code_without_its_status_line_is_not_exact_and_claims_no_outcome() -> None:
    verdict = decide(LegFacts("CONGESTION", None, cause=34, tech_cause=503))
    assert (verdict.code, verdict.outcome, verdict.certain) == ("503", None, False)


def test_no_leg_without_a_dial_failure_status_claims_nothing() -> None:
    verdict = decide(LegFacts("", "", has_leg=False, cause=16))
    assert (verdict.outcome, verdict.certain) == (None, False)


def _events(frames: list[str]) -> list[Event]:
    data = "".join(f + "\r\n\r\n" for f in frames).encode()
    return [m for m in AmiParser().feed(data) if isinstance(m, Event)]


def _dial(a: str, b: str, n: int) -> list[str]:
    return [f"Event: DialBegin\r\nUniqueid: {a}\r\nLinkedid: {a}\r\nChannel: PJSIP/caller-1\r\n"
            f"DestUniqueid: {b}\r\nDestChannel: PJSIP/trunk-0000000{n}\r\nDialString: 100@trunk\r\nTimestamp: 1.0",
            f"Event: DialState\r\nUniqueid: {a}\r\nDestUniqueid: {b}\r\nDialStatus: RINGING\r\nTimestamp: 1.5",
            f"Event: DialEnd\r\nUniqueid: {a}\r\nDestUniqueid: {b}\r\nDialStatus: NOANSWER",
            f"Event: Hangup\r\nUniqueid: {b}\r\nLinkedid: {a}\r\nChannel: PJSIP/trunk-0000000{n}\r\nCause: 0"
            "\r\nTimestamp: 3.0"]


def test_observer_numbers_the_attempts_of_one_calling_channel_and_reads_a_ring_from_dialstate() -> None:
    observer = AsteriskObserver(fetch_phrases=False)
    out = []
    for event in _events(_dial("a.1", "b.1", 1) + _dial("a.1", "b.2", 2)):
        out += observer.on_event(event)
    assert [(o.attempt, o.outcome, o.progress_at, o.ended_at) for o in out] == [
        (1, Outcome.RING_TIMEOUT, 1.5, 3.0), (2, Outcome.RING_TIMEOUT, 1.5, 3.0)]
    assert {o.call_id for o in out} == {"a.1"}
