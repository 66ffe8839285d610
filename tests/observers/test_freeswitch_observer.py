"""FreeSWITCH events -> Observations over every real capture: the carrier's code and words, once per failed leg."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pbx_codes.catalog import load_catalogs
from pbx_codes.model import Annotation, Category, Observation, Outcome, Resolution, Retry, Side
from pbx_codes.observers.freeswitch import (
    FreeswitchObserver,
    annotate_events,
    cause_q850,
    iter_events,
    observation_from_variables,
    reason_q850,
    replay,
    variables_from_event,
)
from pbx_codes.protocols.esl import Event
from pbx_codes.resolve import Resolver
from support.freeswitch_legs import failover_to_gateway_marked_down
from support.paths import FIXTURES as FIXTURES_ROOT

FIXTURES = FIXTURES_ROOT / "freeswitch"
SUMMARIES = sorted(FIXTURES.glob("*.summary.json"))
CASES = [(s, kind) for s in SUMMARIES for kind in ("plain", "json")]


def fake_resolve(obs: Observation) -> Annotation:
    """Stands in for the resolver where only the observation matters: echoes it into an Annotation."""
    resolution = Resolution(catalog=obs.catalog or "sip", code=obs.sip_code, phrase=obs.phrase, matched=None,
                            exact=False, match_kind="none", category=Category.UNKNOWN, retry=Retry.NO, fault=None,
                            sip=obs.sip_code, q850=obs.q850)
    return Annotation(resolution, obs)


class FakeResolver:
    resolve = staticmethod(fake_resolve)


def load(summary: Path, kind: str) -> tuple[dict, dict[str, Annotation]]:
    meta = json.loads(summary.read_text())
    capture = summary.with_name(summary.name.replace(".summary.json", f".{kind}.esl.txt"))
    annotations = replay(capture.read_bytes(), FakeResolver())
    by_leg: dict[str, Annotation] = {}
    for a in annotations:
        assert a.observation.leg_id not in by_leg, "a leg was annotated twice"
        by_leg[a.observation.leg_id] = a
    return meta, by_leg


def role_uuid(meta: dict, prefix: str) -> str | None:
    return next((u for u, c in meta["channels"].items() if c["role"].startswith(prefix)), None)


def b_hangup(meta: dict, uuid: str) -> dict:
    return next(h for _, name, u, h in meta["events"] if name == "CHANNEL_HANGUP" and u == uuid)


@pytest.mark.parametrize("summary,kind", CASES, ids=lambda x: getattr(x, "name", x))
def test_failed_legs_carry_carrier_code_and_phrase(summary: Path, kind: str):
    meta, by_leg = load(summary, kind)
    code = meta["scenario"][:3]
    b = role_uuid(meta, "B")
    if code == "200":
        # a 200 after BYE is not a failure: every leg is reported answered (the live listener's denominator)
        assert {(a.code, a.observation.outcome) for a in by_leg.values()} == {("200", Outcome.ANSWERED)}
        return
    hangup = b_hangup(meta, b)
    assert by_leg[b].code == code
    assert by_leg[b].phrase == hangup["variable_sip_invite_failure_phrase"]
    assert by_leg[b].observation.trunk == f"gw{meta['dial'].split('/')[-1][-3:]}" or by_leg[b].observation.trunk
    assert by_leg[b].hangup_by is Side.CARRIER
    a = role_uuid(meta, "A")
    if a:
        # A's own cause can differ (480 -> NORMAL_CLEARING); its annotation is still B's code and carrier phrase.
        assert by_leg[a].code == code
        assert by_leg[a].phrase == by_leg[b].phrase
        assert by_leg[a].observation.call_id == a
        assert by_leg[b].observation.call_id == a, "linkedid of B is the A-leg's UUID"
        assert by_leg[a].observation.trunk == by_leg[b].observation.trunk


@pytest.mark.parametrize("summary", SUMMARIES, ids=lambda p: p.name)
def test_plain_and_json_captures_give_identical_annotations(summary: Path):
    _, plain = load(summary, "plain")
    _, js = load(summary, "json")
    assert {k: v.to_dict() for k, v in plain.items()} == {k: v.to_dict() for k, v in js.items()}


@pytest.mark.parametrize("variant", ["direct", "bridge", "hold"])
@pytest.mark.parametrize("scenario,phrase", [("409_not_enough_money", "Not enough money"),
                                             ("503_simul_limit", "Simultaneous calls limit reached")])
def test_carrier_phrase_is_the_carriers_words(scenario: str, variant: str, phrase: str):
    meta, by_leg = load(FIXTURES / f"{scenario}.{variant}.summary.json", "plain")
    assert by_leg[role_uuid(meta, "B")].phrase == phrase


@pytest.mark.parametrize("variant", ["direct", "bridge", "hold"])
def test_reason_header_q850_overrides_the_sip_table(variant: str):
    meta, by_leg = load(FIXTURES / f"480_reason_q850_17.{variant}.summary.json", "json")
    legs = [u for u in (role_uuid(meta, "B"), role_uuid(meta, "A")) if u]
    assert [by_leg[u].q850 for u in legs] == [17] * len(legs)


def test_480_without_reason_keeps_bridged_cause_on_a_leg():
    meta, by_leg = load(FIXTURES / "480_unavail.bridge.summary.json", "plain")
    a = by_leg[role_uuid(meta, "A")]
    assert a.code == "480" and a.q850 == 18  # last_bridge_hangup_cause NO_USER_RESPONSE, not A's NORMAL_CLEARING


def test_a_leg_is_decided_once_on_hangup_complete_where_who_hung_up_is_known():
    data = (FIXTURES / "486_busy.direct.plain.esl.txt").read_bytes()
    events = [e for e in iter_events(data) if e.name in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE")]
    assert len(events) == 2
    observer = FreeswitchObserver()
    assert [len(observer.feed(e)) for e in events] == [0, 1]


def test_hangup_complete_alone_is_enough():
    data = (FIXTURES / "409_not_enough_money.direct.json.esl.txt").read_bytes()
    events = [e for e in iter_events(data) if e.name == "CHANNEL_HANGUP_COMPLETE"]
    (a,) = annotate_events(events, fake_resolve)
    assert a.code == "409" and a.phrase == "Not enough money" and a.observation.q850 == 31


def test_forced_catalog_applies_to_every_observation():
    data = (FIXTURES / "409_not_enough_money.bridge.plain.esl.txt").read_bytes()
    assert {a.catalog for a in replay(data, FakeResolver(), catalog="lifecell")} == {"lifecell"}


def test_variables_from_plain_event_are_decoded_names():
    event = Event("CHANNEL_HANGUP", {"Unique-ID": "u", "Hangup-Cause": "USER_BUSY",
                                     "variable_proto_specific_hangup_cause": "sip:486"})
    v = variables_from_event(event.headers)
    assert v == {"uuid": "u", "hangup_cause": "USER_BUSY", "proto_specific_hangup_cause": "sip:486"}


def test_reason_header_parsing():
    assert reason_q850('Q.850;cause=17;text="User busy"') == 17
    assert reason_q850("SIP;cause=480") is None
    assert reason_q850(None) is None


def test_cause_names_map_to_q850():
    assert (cause_q850("USER_BUSY"), cause_q850("NORMAL_TEMPORARY_FAILURE"), cause_q850("BOGUS")) == (17, 41, None)


def test_bye_after_200_is_not_a_failure():
    v = {"uuid": "u", "sip_term_status": "200", "proto_specific_hangup_cause": "sip:200",
         "sip_hangup_disposition": "recv_bye", "hangup_cause": "NORMAL_CLEARING", "direction": "outbound"}
    assert observation_from_variables(v) is None


def test_cancel_by_caller_is_attributed_to_caller():
    v = {"uuid": "u", "hangup_cause": "ORIGINATOR_CANCEL", "sip_hangup_disposition": "recv_cancel",
         "direction": "inbound"}
    obs = observation_from_variables(v)
    assert obs is not None and obs.hangup_by is Side.CALLER and obs.outcome is Outcome.CALLER_CANCEL
    # ORIGINATOR_CANCEL is FreeSWITCH's own cause 487, not a Q.850 cause
    assert (obs.q850, obs.pbx_cause) == (None, "ORIGINATOR_CANCEL")


def test_gateway_from_channel_name_and_catalog_variable():
    v = {"uuid": "u", "channel_name": "sofia/gateway/lifecell-trunk/0501234567", "sip_invite_failure_status": "409",
         "sip_invite_failure_phrase": "Not enough money", "direction": "outbound",
         "sip_hangup_disposition": "recv_refuse", "pbx_codes_catalog": "lifecell"}
    obs = observation_from_variables(v)
    assert obs.trunk == "lifecell-trunk" and obs.catalog == "lifecell" and obs.hangup_by is Side.CARRIER


def _real_resolver():
    return Resolver(load_catalogs(), bindings={"gw409": "lifecell"}, default_catalog="sip")


@pytest.mark.parametrize("variant", ["direct", "bridge", "hold"])
def test_lifecell_409_is_billing_with_the_real_resolver(variant: str):
    resolver = _real_resolver()
    meta = json.loads((FIXTURES / f"409_not_enough_money.{variant}.summary.json").read_text())
    data = (FIXTURES / f"409_not_enough_money.{variant}.json.esl.txt").read_bytes()
    by_leg = {a.observation.leg_id: a for a in replay(data, resolver)}
    for role in ("B", "A"):
        uuid = role_uuid(meta, role)
        if uuid:
            assert by_leg[uuid].catalog == "lifecell"
            assert by_leg[uuid].category is Category.BILLING


@pytest.mark.parametrize("capture", sorted(FIXTURES.glob("*.*.esl.txt")), ids=lambda p: p.name)
def test_decoding_only_the_observers_events_loses_no_annotation(capture: Path):
    data = capture.read_bytes()
    everything = annotate_events(iter_events(data), fake_resolve)
    wanted = annotate_events(iter_events(data, FreeswitchObserver.WANTED_EVENTS), fake_resolve)
    assert [a.to_dict() for a in wanted] == [a.to_dict() for a in everything]
    names = {e.name for e in iter_events(data)}
    assert not names <= FreeswitchObserver.WANTED_EVENTS or ".control." in capture.name, "nothing was skipped"


def test_answered_call_is_reported_as_200_ok_only_when_asked() -> None:
    """The live listener reports answered legs (the failure rate's denominator); replay reports failures only."""
    data = (FIXTURES / "200_ok_bye.direct.json.esl.txt").read_bytes()
    resolver = Resolver(load_catalogs())
    for report, expected in ((False, []), (True, [("200", "ok")])):
        observer = FreeswitchObserver(report_answered=report)
        got = [resolver.resolve(o) for e in iter_events(data) for o in observer.feed(e)]
        assert [(a.code, a.category.value) for a in got] == expected


@pytest.mark.parametrize("field, value", [("hangup_cause_q850", "²"), ("sip_term_cause", "¹⁷"),
                                          ("event_timestamp", "9" * 400)])
def test_odd_numbers_in_variables_are_ignored_not_raised(field: str, value: str):
    obs = observation_from_variables({"uuid": "u1", "sip_term_status": "486", field: value})
    assert obs is not None and obs.sip_code == "486"


def test_an_event_with_an_overlong_timestamp_still_gives_its_observation():
    event = Event(name="CHANNEL_HANGUP_COMPLETE", format="json", headers={
        "Event-Name": "CHANNEL_HANGUP_COMPLETE", "Unique-ID": "u2", "Hangup-Cause": "USER_BUSY",
        "variable_sip_term_status": "486", "Event-Date-Timestamp": "9" * 400})
    (obs,) = FreeswitchObserver().feed(event)
    assert obs.sip_code == "486" and obs.timestamp is None


@pytest.mark.parametrize("variables", [
    {"sip_term_status": "607", "sip_term_cause": "819", "hangup_cause": "UNWANTED", "hangup_cause_q850": "16"},
    {"sip_term_status": "607", "sip_term_cause": "819"},
], ids=["by-name", "by-number-only"])
def test_a_freeswitch_cause_above_127_is_never_a_q850_cause_and_keeps_its_name(variables: dict) -> None:
    """607 Unwanted: FreeSWITCH's own cause UNWANTED is 819 (and hangup_cause_q850 its stand-in 16)."""
    obs = observation_from_variables({"uuid": "u", "direction": "outbound", "sip_reply_port": "5060", **variables})
    assert obs is not None and obs.sip_code == "607"
    assert (obs.q850, obs.pbx_cause) == (None, "UNWANTED")


def test_an_a_leg_whose_last_attempt_never_reached_a_carrier_carries_that_attempt_not_the_earlier_one():
    """Failover: gateway 1 answered 503 (its copies stay on A), gateway 2 was marked down (no B-leg)."""
    _, obs = failover_to_gateway_marked_down()
    assert (obs.sip_code, obs.outcome, obs.pbx_cause, obs.trunk, obs.hangup_by) == (
        None, Outcome.UNREACHABLE, "GATEWAY_DOWN", "backup", Side.LOCAL)
