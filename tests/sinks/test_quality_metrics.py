"""/metrics counts every seizure per PBX x trunk x outcome class and observes PDD, SRD and duration."""
from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pbx_codes.quality.classes import load_table
from pbx_codes.sinks.metrics import Metrics
from support.seizures import mix, seizure


def samples(metrics: Metrics) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def seized(found: dict, **labels) -> float:
    return sum(v for (name, ls), v in found.items() if name == "pbx_codes_trunk_seizures_total"
               and all(dict(ls).get(k) == val for k, val in labels.items()))


def test_seizures_are_counted_by_class_ner_and_rfc6076_response():
    m = Metrics()
    for ann in mix():
        m.observe(ann)
    found = samples(m)
    assert seized(found, trunk="lifecell") == 10
    assert seized(found, trunk="lifecell", **{"class": "answered"}) == 4
    assert seized(found, trunk="lifecell", ner="yes") == 7
    assert seized(found, trunk="lifecell", response="200") == 4
    assert seized(found, trunk="lifecell", response="effective") == 1  # 486; the ring timeout's CANCEL got 487
    assert seized(found, trunk="lifecell", response="ineffective") == 2
    assert seized(found, trunk="lifecell", **{"class": "billing"}, ner="no") == 1


def test_delays_and_durations_land_in_histograms():
    m = Metrics()
    for ann in mix():
        m.observe(ann)
    found = samples(m)
    key = (("pbx", "asterisk"), ("trunk", "lifecell"))
    assert found[("pbx_codes_trunk_pdd_seconds_count", key)] == 6
    assert found[("pbx_codes_trunk_pdd_seconds_sum", key)] == 21.0
    assert found[("pbx_codes_trunk_pdd_seconds_bucket", tuple(sorted(key + (("le", "2.0"),))))] == 2
    assert found[("pbx_codes_trunk_call_duration_seconds_count", key)] == 4
    assert found[("pbx_codes_trunk_call_duration_seconds_sum", key)] == 100.0
    # SRD: 18x after 1..6 s for six legs, the final failure after 0.5, 0.25, 0.75, 0.1 s for the four others
    assert found[("pbx_codes_trunk_srd_seconds_count", key)] == 10
    assert found[("pbx_codes_trunk_srd_seconds_sum", key)] == pytest.approx(21.0 + 1.6)


def test_the_callers_leg_without_an_attempt_number_is_no_seizure():
    m = Metrics()
    m.observe(seizure("lifecell", "busy", "486", attempt=None))
    assert seized(samples(m)) == 0


def test_an_overridden_class_table_relabels_the_counters():
    table = load_table({"class": [{"name": "caller_abandon", "categories": ["cancelled"], "ner": False}]})
    m = Metrics(quality=table)
    m.observe(seizure("t", "cancelled", "487"))
    assert seized(samples(m), **{"class": "caller_abandon"}, ner="no") == 1


def test_an_attempt_that_sent_no_invite_is_counted_with_response_not_sent():
    """A trunk Asterisk's qualify says is unavailable: no channel, no INVITE (as the FastAGI path publishes it)."""
    from pbx_codes.catalog import load_catalogs
    from pbx_codes.model import Observation, Outcome
    from pbx_codes.resolve import Resolver

    down = Resolver(load_catalogs()).resolve(Observation(q850=3, trunk="dead", pbx="asterisk", call_id="1.0",
                                                         outcome=Outcome.UNREACHABLE, certain=True, attempt=1))
    m = Metrics()
    m.observe(down)
    found = samples(m)
    assert seized(found, trunk="dead") == 1
    assert seized(found, trunk="dead", response="not_sent", ner="no") == 1
