"""`[[alerts]]` over the trunk quality measures: NER below a threshold, ISA and PDD p95 above one, with minimum
seizures and hysteresis, exactly like the category-share rules."""
from __future__ import annotations

import pytest

from pbx_codes.sinks.alerts import AlertConfigError, AlertEngine, parse_rule, parse_rules
from support.seizures import mix, seizure


def engine(*tables: dict) -> AlertEngine:
    return AlertEngine(parse_rules(tables), clock=lambda: 0.0)


def feed(eng: AlertEngine, annotations, start: float = 0.0, step: float = 1.0) -> list:
    events = []
    for i, ann in enumerate(annotations):
        events += eng.observe(ann, now=start + i * step)
    return events


def test_ner_below_threshold_fires_once_enough_seizures_are_in_the_window():
    eng = engine({"trunk": "*", "measure": "ner", "below": 0.8, "window": 300, "min_calls": 10})
    events = feed(eng, mix())  # NER 0.7 over the mix's 10 seizures
    assert [(e.state, e.trunk, e.kind, e.category) for e in events] == [("fired", "lifecell", "measure", "ner")]
    assert events[0].value == pytest.approx(0.7) and events[0].calls == 10
    assert "NER 70% over 10 seizures on lifecell" in events[0].message


def test_ner_alert_waits_for_the_minimum_of_seizures():
    eng = engine({"measure": "ner", "below": 0.8, "min_calls": 11})
    assert feed(eng, mix()) == []


def test_ner_alert_clears_with_hysteresis_when_the_trunk_recovers():
    eng = engine({"measure": "ner", "below": 0.8, "window": 100, "min_calls": 5, "hold": 0})
    assert [e.state for e in feed(eng, mix())] == ["fired"]
    answered = [seizure("lifecell", "ok", "200", pdd=1.0, answer_after=2.0, talk=5.0, leg=f"ok{i}") for i in range(20)]
    events = feed(eng, answered, start=200.0)  # the bad seizures left the window; all answered now
    assert [e.state for e in events] == ["cleared"]


def test_isa_and_pdd_p95_above_thresholds():
    eng = engine({"measure": "isa", "above": 0.1, "min_calls": 10},
                 {"measure": "pdd_p95_ms", "above": 5000, "min_calls": 5})
    events = feed(eng, mix())
    by_measure = {e.category: e for e in events}
    assert by_measure["isa"].value == pytest.approx(0.2)
    assert by_measure["pdd_p95_ms"].value == pytest.approx(5750.0)  # PDD 1..6 s, linear p95
    assert "PDD p95 5750 ms" in by_measure["pdd_p95_ms"].message


def test_seer_leaves_redirects_out_and_acd_is_the_mean_talk_time():
    eng = engine({"measure": "seer", "below": 0.99, "min_calls": 1}, {"measure": "acd_s", "below": 26, "min_calls": 1})
    events = feed(eng, [seizure("t", "unknown", "302", leg="r"), seizure("t", "busy", "486", leg="b"),
                        seizure("t", "ok", "200", answer_after=1.0, talk=24.0, leg="a"),
                        seizure("t", "capacity", "503", leg="c")])
    seer = [e for e in events if e.category == "seer"]
    assert seer and seer[0].value == pytest.approx(2 / 3)  # 486 and 200 out of the three non-redirected
    acd = [e for e in events if e.category == "acd_s"]
    assert acd and acd[0].value == pytest.approx(24.0)


def test_the_callers_leg_never_counts_for_a_measure():
    eng = engine({"measure": "ner", "below": 0.5, "min_calls": 1})
    assert feed(eng, [seizure("t", "capacity", "503", attempt=None)]) == []


@pytest.mark.parametrize("table,error", [
    ({"measure": "mos", "below": 3}, "measure 'mos' is not one of"),
    ({"measure": "ner"}, "exactly one of above and below"),
    ({"measure": "ner", "above": 0.1, "below": 0.9}, "exactly one of above and below"),
    ({"measure": "ner", "below": 1.5}, "ner is a share"),
    ({"measure": "ner", "below": 0.9, "category": "busy"}, "category does not go with measure"),
    ({"measure": "ner", "below": 0.9, "clear_above": 0.5}, "clear_above must not be under"),
    ({"category": "busy", "below": 0.5}, "below and clear_above are for a measure"),
])
def test_wrong_measure_rules_are_refused_with_the_reason(table, error):
    with pytest.raises(AlertConfigError, match=error):
        parse_rule(table)


def test_attempts_that_sent_no_invite_lower_ner_but_stay_out_of_isa():
    """A gateway marked down (the recorded FreeSWITCH bridge): NER counts the attempt, ISA counts INVITEs only."""
    from pbx_codes.catalog import load_catalogs
    from pbx_codes.observers.freeswitch import replay
    from pbx_codes.resolve import Resolver
    from support.paths import FIXTURES

    capture = FIXTURES / "freeswitch" / "live2" / "gateway_down.bridge_marked_down.plain.esl.txt"
    (down,) = replay(capture.read_bytes(), Resolver(load_catalogs()))
    eng = engine({"trunk": "lab_pingdown", "measure": "ner", "below": 0.9, "min_calls": 2},
                 {"trunk": "lab_pingdown", "measure": "isa", "above": 0.1, "min_calls": 2})
    events = feed(eng, [seizure("lab_pingdown", "ok", "200", answer_after=1.0, talk=5.0, leg="a"), down,
                        seizure("lab_pingdown", "capacity", "503", leg="c")])
    by_measure = {e.category: e for e in events}
    assert (by_measure["ner"].value, by_measure["ner"].calls) == (pytest.approx(1 / 2), 2)  # the answer and down
    assert (by_measure["isa"].value, by_measure["isa"].calls) == (pytest.approx(1 / 2), 3)  # the 503 of 2 INVITEs
