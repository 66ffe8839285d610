"""The outcome classes are data: the shipped table covers every category once, with a source; `[quality]` in
pbx-codes.toml overrides it; a wrong table is refused with the place named."""
from __future__ import annotations

import pytest

from pbx_codes.config import parse_config
from pbx_codes.model import Category
from pbx_codes.quality.classes import QualityConfigError, load_table


def test_every_category_is_in_exactly_one_shipped_class_and_every_class_names_its_source():
    table = load_table()
    named = [c for cls in table.classes for c in cls.categories]
    assert sorted(named) == sorted(c.value for c in Category)
    assert all(cls.source for cls in table.classes)
    assert table.ner_classes == {"answered", "user_busy", "no_answer", "user_rejected", "caller_abandon", "address"}
    assert table.classify("billing").ner is False and table.classify("busy").ner is True


def test_rfc6076_response_buckets():
    table = load_table()
    assert [table.response(c) for c in ("200", "486", "603", "503", "408", "302", "404", None)] == [
        "200", "effective", "effective", "ineffective", "ineffective", "redirect", "other", "other"]
    assert table.response("480", "ring_timeout") == "other"  # our dial timer's CANCEL got 487


def test_a_quality_section_moves_a_category_and_changes_a_code_set():
    config = parse_config({"quality": {"class": [{"name": "caller_abandon", "categories": ["cancelled"],
                                                  "ner": False},
                                                 {"name": "address", "categories": ["invalid_number"], "ner": False}],
                                       "rfc6076": {"isa": ["408", "500", "502", "503", "504"]}}})
    table = load_table(config.quality)
    assert table.classify("cancelled").ner is False and table.classify("invalid_number").ner is False
    assert table.classify("not_found").name == "other"  # left by the overridden class: a failure of the network
    assert table.response("502") == "ineffective"


@pytest.mark.parametrize("section,error", [
    ({"class": [{"name": "x", "categories": ["money"], "ner": False}]}, "unknown categories \\['money'\\]"),
    ({"class": [{"name": "x", "categories": ["busy"]}]}, "ner must be true or false"),
    ({"class": [{"name": "bad name", "categories": [], "ner": True}]}, "name must be a word"),
    ({"rfc6076": {"isa": [503]}}, "three-digit SIP codes"),
    ({"rfc6076": {"asr": ["200"]}}, "only \\['ser', 'seer', 'isa'\\]"),
    ({"classes": []}, "unknown key"),
])
def test_a_wrong_quality_section_is_refused_with_the_place_named(section, error):
    with pytest.raises(QualityConfigError, match=error):
        load_table(section)
