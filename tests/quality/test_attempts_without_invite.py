"""An attempt that never reached the carrier (a gateway marked down, the PBX's own throttle, a trunk qualify says is
unavailable) is a seizure of the trunk the route named: ASR and NER fall (ITU-T E.411, E.425 count every attempt),
while SER, SEER and ISA, which count INVITEs sent (RFC 6076 section 4), do not see it."""
from __future__ import annotations

import csv

import pytest

from pbx_codes.catalog import load_catalogs
from pbx_codes.model import Observation
from pbx_codes.observers.asterisk_outcome import LegFacts, decide
from pbx_codes.observers.freeswitch import replay
from pbx_codes.quality.classes import load_table
from pbx_codes.quality.legs import leg_from_annotation, leg_from_row
from pbx_codes.quality.measures import per_trunk
from pbx_codes.resolve import Resolver
from support.freeswitch_legs import failover_to_gateway_marked_down
from support.paths import FIXTURES

LIVE2 = FIXTURES / "freeswitch" / "live2"
RESOLVER = Resolver(load_catalogs())
TABLE = load_table()


def legs_of(*captures: str):
    return [leg_from_annotation(a) for c in captures for a in replay((LIVE2 / f"{c}.plain.esl.txt").read_bytes(),
                                                                       RESOLVER)]


def by_trunk(legs) -> dict[str, dict]:
    return {r["trunk"]: r for r in per_trunk(legs, TABLE)}


def test_a_bridge_to_a_gateway_marked_down_is_attempt_1_on_that_gateway() -> None:
    (a,) = replay((LIVE2 / "gateway_down.bridge_marked_down.plain.esl.txt").read_bytes(), RESOLVER)
    assert (a.observation.trunk, a.observation.attempt, a.observation.outcome.value) == (
        "lab_pingdown", 1, "unreachable")


def test_a_gateway_marked_down_lowers_its_asr_and_ner_and_no_rfc6076_ratio_counts_it() -> None:
    q = by_trunk(legs_of("gateway_down.bridge_marked_down"))["lab_pingdown"]
    assert (q["seizures"], q["invites"], q["answered"], q["asr"], q["ner"]) == (1, 0, 0, 0.0, 0.0)
    assert (q["ser"], q["seer"], q["isa"]) == (None, None, None)  # no INVITE: nothing to divide by
    assert q["classes"] == {"unavailable": 1}


def test_a_throttled_bridge_counts_against_the_trunk_it_was_routed_to_beside_an_answered_call() -> None:
    q = by_trunk(legs_of("answered_carrier_bye.direct", "throttled.bridge"))["lifecell"]
    # two seizures on lifecell: one answered (its INVITE), one refused by FreeSWITCH before any INVITE
    assert (q["seizures"], q["invites"], q["answered"]) == (2, 1, 1)
    assert (q["asr"], q["ner"]) == (0.5, 0.5)
    assert (q["ser"], q["seer"], q["isa"]) == (1.0, 1.0, 0.0)  # the one INVITE sent was answered


def test_a_closed_port_is_still_an_invite_the_pbx_answered_itself() -> None:
    """FreeSWITCH sent the INVITE (ICMP said the port was closed) and made up the 503: ISA counts it."""
    q = by_trunk(legs_of("gateway_down.bridge"))["lab_closed"]
    assert (q["seizures"], q["invites"], q["isa"]) == (1, 1, 1.0)


def _asterisk_qualify_down(attempt: int, trunk: str):
    """The observation the FastAGI path publishes for a Dial that created no channel (qualify: Unavailable)."""
    verdict = decide(LegFacts("CHANUNAVAIL", None, has_leg=False))
    return RESOLVER.resolve(Observation(
        sip_code=verdict.code, q850=verdict.q850, trunk=trunk, hangup_by=verdict.hangup_by, pbx="asterisk",
        call_id="1795426000.0", channel=None, dial_status="CHANUNAVAIL", outcome=verdict.outcome,
        certain=verdict.certain, attempt=attempt, timestamp=1795426000.0))


def test_an_asterisk_qualify_down_attempt_counts_for_asr_and_ner_not_for_the_rfc6076_ratios() -> None:
    down = _asterisk_qualify_down(1, "dead")
    busy = RESOLVER.resolve(Observation(sip_code="486", phrase="Busy Here", trunk="dead", pbx="asterisk",
                                        call_id="1795426001.0", channel="PJSIP/dead-00000001", attempt=1,
                                        outcome=None, timestamp=1795426001.0))
    for legs in ([leg_from_annotation(down), leg_from_annotation(busy)],
                 [leg_from_row(down.to_dict()), leg_from_row(busy.to_dict())]):  # live, and from the store
        q = by_trunk(legs)["dead"]
        assert (q["seizures"], q["invites"], q["asr"], q["ner"]) == (2, 1, 0.0, pytest.approx(0.5))
        assert (q["ser"], q["seer"], q["isa"]) == (0.0, 1.0, 0.0)  # the 486 is the only INVITE


def test_response_bucket_of_an_attempt_that_sent_no_invite() -> None:
    assert TABLE.response(None, "unreachable") == TABLE.response(None, "pbx_limit") == "not_sent"
    assert TABLE.response("404", "unreachable", None) == "not_sent"  # 404: the equivalent of Q.850 3, no route
    assert TABLE.response("503", "unreachable", "503") == "ineffective"  # the PBX's own answer to its INVITE
    assert TABLE.response("503", "unreachable") == "ineffective"
    assert TABLE.response(None, "local_response") == "other"


def test_failover_to_a_gateway_marked_down_is_the_calls_second_attempt_on_that_gateway() -> None:
    """Gateway 1 answered 503 (a B-leg, an INVITE); the bridge to gateway 2 created no leg (marked down)."""
    first, last = failover_to_gateway_marked_down()
    assert [(o.trunk, o.attempt) for o in (first, last)] == [("lifecell", 1), ("backup", 2)]
    q = by_trunk([leg_from_annotation(RESOLVER.resolve(o)) for o in (first, last)])
    assert [(t, q[t]["seizures"], q[t]["invites"], q[t]["isa"]) for t in sorted(q)] == [
        ("backup", 1, 0, None), ("lifecell", 1, 1, 1.0)]


def test_report_over_cdr_custom_rows_counts_a_qualify_down_attempt_the_annotation_numbered(tmp_path) -> None:
    """The CSV's current layout carries pbx_attempt and pbx_outcome: a Dial that created no channel is a seizure of
    its trunk with no INVITE, beside the rows of the first layout."""
    from pbx_codes.enrich.mapping import PBX_CDR_CUSTOM_COLUMNS, get_preset
    from pbx_codes.quality.cdr import read_legs

    common = {"start": "2026-11-23 09:00:00", "end": "2026-11-23 09:00:01", "linkedid": "1795426000.0",
              "lastapp": "Dial", "pbx_trunk": "dead", "pbx_catalog": "sip"}
    down = {**common, "disposition": "FAILED", "pbx_dialstatus": "CHANUNAVAIL", "pbx_category": "network",
            "pbx_retry": "failover", "pbx_exact": "0", "pbx_hangup_by": "local", "pbx_outcome": "unreachable",
            "pbx_q850_observed": "3", "pbx_attempt": "1", "pbx_attempts": "1:dead:::network:failover:unreachable"}
    busy = {**common, "linkedid": "1795426001.0", "disposition": "BUSY", "dstchannel": "PJSIP/dead-00000001",
            "pbx_dialstatus": "BUSY", "pbx_rawcause": "SIP 486 Busy Here"}
    new = (*PBX_CDR_CUSTOM_COLUMNS, "pbx_hangup_by", "pbx_outcome", "pbx_q850_observed", "pbx_attempt",
           "pbx_attempts")
    path = tmp_path / "pbx_codes.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow([down.get(c, "") for c in new])
        writer.writerow([busy.get(c, "") for c in PBX_CDR_CUSTOM_COLUMNS])
    legs, stats = read_legs([path], get_preset("asterisk-cdr-custom-pbx"), RESOLVER.resolve)
    assert (stats.rows, stats.malformed) == (2, 0)
    q = by_trunk(legs)["dead"]
    assert (q["seizures"], q["invites"], q["asr"], q["ner"]) == (2, 1, 0.0, 0.5)
    assert (q["ser"], q["seer"], q["isa"]) == (0.0, 1.0, 0.0)
