"""The measures over the recorded FreeSWITCH captures equal the values worked out by hand from their headers.

Timings (microseconds, from each leg's CHANNEL_HANGUP_COMPLETE: start/progress/progress_media/answer/end_uepoch)
are also read test-side (`fs_timings`), and the observer's own must agree; FreeSWITCH's clock in these recordings
ticks in 20 ms steps, so several delays are exactly 0.
"""
from __future__ import annotations

import pytest

from pbx_codes.catalog import load_catalogs
from pbx_codes.observers.freeswitch import FreeswitchObserver, iter_events
from pbx_codes.quality.classes import load_table
from pbx_codes.quality.legs import leg_from_annotation
from pbx_codes.quality.measures import per_trunk
from pbx_codes.resolve import Resolver
from quality.fs_timings import annotated_legs, leg_facts
from support.paths import FIXTURES

FS = FIXTURES / "freeswitch"
LIVE2 = ("answered_carrier_bye.bridge", "answered_carrier_bye.direct", "caller_cancel.bridge",
         "failover_503_then_486.bridge", "progress_reason_503.direct")
FIRST_SET = ("200_ok_bye.direct", "409_not_enough_money.direct", "486_busy.direct", "503_simul_limit.direct")


@pytest.fixture(scope="module")
def fs_resolver() -> Resolver:
    # The first set's lab gateways gw409/gw503 stand for lifecell, whose 409 is "not enough money".
    return Resolver(load_catalogs(), bindings={"gw409": "lifecell", "gw503": "lifecell"})


def results(names, folder, resolver) -> dict[str, dict]:
    legs = [leg_from_annotation(a) for n in names for a in annotated_legs(folder / f"{n}.plain.esl.txt", resolver)]
    return {r["trunk"]: r for r in per_trunk(legs, load_table())}


def us(micro: int) -> float:
    return micro / 1000.0  # microseconds -> milliseconds


def test_live2_lifecell_mix_answered_cancelled_and_503s_give_hand_computed_measures(fs_resolver):
    r = results(LIVE2, FS / "live2", fs_resolver)
    life = r["lifecell"]
    # Seizures on lifecell (outbound legs only; the bridging A-legs are not attempts): answered (bridge), answered
    # (direct), caller cancel after 180, 503 (failover's first gateway), 503 after 183.
    assert (life["seizures"], life["answered"]) == (5, 2)
    assert life["asr"] == pytest.approx(2 / 5)
    assert life["ner"] == pytest.approx(3 / 5)  # 2 answered + 1 abandoned by the caller; the two 503s count against
    assert life["ser"] == pytest.approx(2 / 5) and life["seer"] == pytest.approx(2 / 5)
    assert life["isa"] == pytest.approx(2 / 5)  # the two 503s
    assert life["classes"] == {"answered": 2, "caller_abandon": 1, "capacity": 2}
    # PDD: answer without 18x at start (bridge 1796115963357203 -> ...357203, direct ...177183 -> ...177183), 180
    # at start (...077176 -> ...077176), 183 at start (...137176 -> ...137176): four zeros; the first 503 had no
    # progress and is not timed.
    assert life["timed"]["pdd"] == 4
    assert life["pdd_p50_ms"] == 0.0 and life["pdd_p95_ms"] == 0.0
    # ACD: (1796115964377181 - 1796115963357203) and (1796115968197167 - 1796115967177183) microseconds.
    assert life["acd_s"] == pytest.approx(((1019978 + 1019984) / 2) / 1e6, abs=1e-6)
    assert life["timed"]["duration"] == 2
    assert life["top_failures"][0] == {"category": "capacity", "code": "503", "phrase": "Service Unavailable",
                                       "count": 2}
    gw2 = r["lab_gw2"]
    assert (gw2["seizures"], gw2["answered"], gw2["ner"], gw2["seer"], gw2["isa"]) == (1, 0, 1.0, 1.0, 0.0)


def test_first_set_direct_calls_give_hand_computed_measures_per_trunk(fs_resolver):
    r = results(FIRST_SET, FS, fs_resolver)
    assert sorted(r) == ["gw200", "gw409", "gw486", "gw503"]
    ok = r["gw200"]
    assert (ok["seizures"], ok["answered"], ok["asr"], ok["ner"], ok["ser"], ok["isa"]) == (1, 1, 1.0, 1.0, 1.0, 0.0)
    assert ok["pdd_p50_ms"] == 0.0  # 180 in the same 20 ms tick as the INVITE
    assert ok["acd_s"] == pytest.approx((1795422889511702 - 1795422883011703) / 1e6, abs=1e-6)
    money = r["gw409"]  # lifecell's 409 Not enough money: a carrier failure, so NER drops
    assert money["classes"] == {"billing": 1}
    assert (money["asr"], money["ner"], money["seer"], money["isa"]) == (0.0, 0.0, 0.0, 0.0)
    assert money["pdd_p50_ms"] == pytest.approx(us(1795422871851749 - 1795422871831719), abs=1e-3)
    assert money["srd_p50_ms"] == pytest.approx(us(1795422871851749 - 1795422871831719), abs=1e-3)
    busy = r["gw486"]  # the callee's choice: NER and SEER keep it
    assert (busy["classes"], busy["ner"], busy["seer"], busy["isa"]) == ({"user_busy": 1}, 1.0, 1.0, 0.0)
    assert busy["pdd_p95_ms"] == pytest.approx(us(1795422860991738 - 1795422860971715), abs=1e-3)
    limit = r["gw503"]
    assert (limit["classes"], limit["ner"], limit["isa"]) == ({"capacity": 1}, 0.0, 1.0)


def test_bridged_calls_count_one_seizure_per_outbound_leg_never_the_callers_leg(fs_resolver):
    r = results(("answered_carrier_bye.bridge",), FS / "live2", fs_resolver)
    assert r["lifecell"]["seizures"] == 1


@pytest.mark.parametrize("name", [f"live2/{n}" for n in LIVE2] + list(FIRST_SET))
def test_the_observer_reports_the_timings_and_attempts_the_headers_hold(name):
    data = (FS / f"{name}.plain.esl.txt").read_bytes()
    facts = leg_facts(data)
    observer = FreeswitchObserver(report_answered=True)
    seen = 0
    for event in iter_events(data, FreeswitchObserver.WANTED_EVENTS):
        for obs in observer.feed(event):
            expected = facts[obs.leg_id]
            assert (obs.attempt, obs.started_at, obs.progress_at, obs.answered_at, obs.ended_at) == (
                expected.get("attempt"), expected["started_at"], expected["progress_at"], expected["answered_at"],
                expected["ended_at"]), obs.leg_id
            seen += 1
    assert seen
