"""Every leg of every call shape recorded from the live FreeSWITCH (live2) gets the right annotation in `replay`
(plain and JSON events) and through the hangup-hook endpoint, fed what the real hook saw. The listener and the
backfill paths are held to the same table in tests/adapters/test_esl_listener.py and tests/backfill/."""
from __future__ import annotations

import pytest

from observers.freeswitch_live2 import CAPTURES, EXPECTED, by_role, capture_bytes, hook_forms, resolver, roles
from pbx_codes.model import Observation, Outcome
from pbx_codes.observers.freeswitch import replay
from pbx_codes.writeback.freeswitch_hook import HookServer

RESOLVER = resolver()


@pytest.mark.parametrize("kind", ["json", "plain"])
@pytest.mark.parametrize("capture", CAPTURES)
def test_replay_annotates_every_leg_of_the_live_capture(capture: str, kind: str) -> None:
    assert by_role(capture, replay(capture_bytes(capture, kind), RESOLVER)) == EXPECTED[capture]


@pytest.mark.parametrize("capture", CAPTURES)
def test_the_hook_endpoint_gives_every_leg_what_replay_gives_it(capture: str) -> None:
    server = HookServer(RESOLVER.resolve, publish=(published := []).append)
    statuses = [server.answer(form)[0] for form in hook_forms(capture)]
    assert statuses == [200] * len(EXPECTED[capture])
    assert by_role(capture, published) == EXPECTED[capture]
    # every field, not only the table's: the hook and the listener can never disagree (bar the event's own time)
    live = {a.observation.leg_id: a.to_dict() | {"timestamp": None} for a in replay(capture_bytes(capture), RESOLVER)}
    assert {a.observation.leg_id: a.to_dict() | {"timestamp": None} for a in published} == live


def test_a_bridge_to_a_gateway_marked_down_is_annotated_on_a_as_freeswitchs_own_verdict() -> None:
    (a,) = replay(capture_bytes("gateway_down.bridge_marked_down"), RESOLVER)
    obs = a.observation
    assert (obs.pbx_cause, obs.q850, obs.trunk, obs.dial_status) == ("GATEWAY_DOWN", None, "lab_pingdown",
                                                                     "GATEWAY_DOWN")


@pytest.mark.parametrize("capture", ["gateway_down.bridge_marked_down", "throttled.bridge"])
def test_a_leg_without_any_sip_answer_still_gets_a_reason_in_every_language(capture: str) -> None:
    (a,) = replay(capture_bytes(capture), RESOLVER)
    unknown = RESOLVER.resolve(Observation(sip_code="799")).texts
    assert set(a.texts) == {"uk", "ru", "en"} and all(a.texts[lang] != unknown[lang] for lang in a.texts)


def test_throttling_is_not_claimed_with_certainty_since_a_duplicate_uuid_gives_the_same_cause() -> None:
    (a,) = replay(capture_bytes("throttled.bridge"), RESOLVER)
    assert a.observation.pbx_cause == "DESTINATION_OUT_OF_ORDER" and a.observation.certain is False
    assert a.to_dict()["exact"] is False


def test_failover_a_leg_carries_the_last_attempt_and_the_attempts_are_ordered() -> None:
    annotations = replay(capture_bytes("failover_503_then_486.bridge"), RESOLVER)
    names = roles("failover_503_then_486.bridge")
    route = [(names[a.observation.leg_id], a.observation.attempt, a.code, a.observation.trunk) for a in annotations]
    assert route == [("B via lifecell", 1, "503", "lifecell"), ("B via lab_gw2", 2, "486", "lab_gw2"),
                     ("A", None, "486", "lab_gw2")]
    assert len({a.observation.call_id for a in annotations}) == 1


def test_early_media_success_is_not_reported_as_the_dial_status_of_a_failed_call() -> None:
    annotations = replay(capture_bytes("progress_reason_503.bridge"), RESOLVER)
    a_leg = next(a for a in annotations if a.observation.attempt is None)
    assert a_leg.observation.dial_status == "NORMAL_TEMPORARY_FAILURE" and a_leg.category.value == "capacity"
    # the 183's Reason (Q.850 cause 34) is in no frame: what is observed is the 503's own cause
    assert {a.observation.q850 for a in annotations} == {41}


def test_answered_legs_say_who_hung_up_and_carry_their_timings() -> None:
    annotations = replay(capture_bytes("answered_carrier_bye.bridge"), RESOLVER)
    for a in annotations:
        obs = a.observation
        assert obs.outcome is Outcome.ANSWERED and a.hangup_by.value == "carrier"
        assert obs.started_at <= obs.answered_at < obs.ended_at
        assert obs.ended_at - obs.answered_at == pytest.approx(1.0, abs=0.1)  # the carrier's BYE came after 1 s


def test_the_closed_port_503_is_told_from_the_carriers_own_by_the_reply_address() -> None:
    (closed,) = [a for a in replay(capture_bytes("gateway_down.direct"), RESOLVER)]
    (real,) = [a for a in replay(capture_bytes("failover_503_then_486.direct_dup_uuid"), RESOLVER)]
    assert (closed.code, real.code) == ("503", "503")
    assert (closed.observation.outcome, real.observation.outcome) == (Outcome.UNREACHABLE, Outcome.CARRIER_FINAL)
    assert (closed.hangup_by.value, real.hangup_by.value) == ("local", "carrier")
