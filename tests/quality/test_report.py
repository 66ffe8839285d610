"""The report's shapes: per trunk, per PBX, per hour/day; text, CSV (formula-safe), JSON lines, self-contained HTML."""
from __future__ import annotations

import csv
import io
import json
import re

from pbx_codes.quality.classes import load_table
from pbx_codes.quality.legs import leg_from_annotation
from pbx_codes.quality.report import build, render
from support.seizures import MIX_EXPECTED, mix, seizure


def legs(*annotations):
    return [leg_from_annotation(a) for a in annotations]


def test_json_lines_carry_every_promised_field_per_trunk():
    results = build(legs(*mix("lifecell"), *mix("kyivstar")), load_table())
    objects = [json.loads(line) for line in render(results, "json").splitlines()]
    assert [o["trunk"] for o in objects] == ["kyivstar", "lifecell"]
    for o in objects:
        assert {k: o[k] for k in MIX_EXPECTED} == MIX_EXPECTED
        assert {"pbx", "trunk", "seizures", "answered", "asr", "ner", "seer", "isa", "pdd_p50_ms", "pdd_p95_ms",
                "acd_s"} <= set(o)


def test_per_pbx_and_per_hour_groupings():
    day = 86400 * 20000
    hourly = build(legs(*mix("t", start=day + 60), *mix("t", start=day + 3600 + 60)), load_table(), by="hour")
    assert [(r["period"], r["seizures"]) for r in hourly] == [("2024-10-04T00:00Z", 10), ("2024-10-04T01:00Z", 10)]
    per_pbx = build(legs(*mix("a"), *mix("b", pbx="freeswitch")), load_table(), by="pbx")
    assert [(r["pbx"], r["trunk"], r["seizures"]) for r in per_pbx] == [("asterisk", "*", 10), ("freeswitch", "*", 10)]


def test_text_table_shows_percentages_and_the_top_failure():
    text = render(build(legs(*mix("lifecell")), load_table()), "text")
    header, row = text.splitlines()
    assert header.split()[:9] == ["pbx", "trunk", "seizures", "answered", "ASR", "NER", "SER", "SEER", "ISA"]
    assert row.split()[:9] == ["asterisk", "lifecell", "10", "4", "40.0%", "70.0%", "40.0%", "50.0%", "20.0%"]
    assert row.endswith("capacity 503 (2)")


def test_csv_cells_from_the_network_cannot_become_formulas_or_lines():
    hostile = seizure("=cmd|' /C calc'!A0", "capacity", "503", phrase="line one\n=HYPERLINK(\"x\")", leg="h")
    out = render(build(legs(hostile), load_table()), "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert len(rows) == 2
    assert rows[1][1].startswith("'=") and rows[1][-1] == "capacity 503 line one =HYPERLINK(\"x\") (1)"


def test_html_page_is_self_contained_with_charts_and_escaped_text():
    hostile = seizure("<script>alert(1)</script>", "busy", "486", leg="x")
    page = render(build(legs(*mix("lifecell", start=0.0), *mix("lifecell", start=7200.0), hostile), load_table(),
                        by="hour"), "html")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<polyline" in page
    assert "<script" not in page and "&lt;script&gt;" in page
    assert not re.search(r"""(src|href)\s*=|@import|url\(""", page), "an external asset"
