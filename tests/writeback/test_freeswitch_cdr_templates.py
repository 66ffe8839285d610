"""The shipped cdr_csv template, filled the way mod_cdr_csv fills it (``${var}`` substituted, nothing escaped), and a
json_cdr document stay parseable with the pbx_* fields intact for recorded calls, even with a hostile carrier phrase.

The pbx_* values are the hook endpoint's answer for each leg (the Lua test proves the script copies that answer
verbatim into the channel variables).
"""
from __future__ import annotations

import csv
import io
import json
from urllib.parse import urlencode

import pytest

from pbx_codes.catalog import load_catalogs
from pbx_codes.observers.freeswitch import HOOK_VARIABLES
from pbx_codes.resolve import Resolver
from pbx_codes.writeback.freeswitch_hook import PBX_VARIABLES, HookServer
from writeback.fs_hook_support import (
    HOSTILE_PHRASE,
    carrier_legs,
    csv_template,
    expand,
    hangup_channels,
    with_phrase,
)

SCENARIOS = ["409_not_enough_money", "503_simul_limit", "480_reason_q850_17"]
PHRASES = {"carrier": None, "hostile": HOSTILE_PHRASE}
HOOK = HookServer(Resolver(load_catalogs(), bindings={"gw409": "lifecell", "gw503": "lifecell",
                                                       "gw817": "lifecell"}).resolve)


def annotated(variables: dict[str, str]) -> dict[str, str]:
    """The leg's variables after the hook: its own plus the pbx_* lines the endpoint answered for the variables
    the script sends."""
    status, body = HOOK.answer(urlencode({n: variables[n] for n in HOOK_VARIABLES if variables.get(n)}).encode())
    assert status == 200
    pbx = dict(line.split("=", 1) for line in body.decode("utf-8").splitlines())
    assert list(pbx) == list(PBX_VARIABLES)
    return {**variables, **pbx}


def legs(scenario: str, phrase: str | None) -> list[dict[str, str]]:
    return [annotated(with_phrase(leg, phrase) if phrase else leg) for leg in carrier_legs(scenario)]


def template_columns(template: str) -> list[str]:
    return [field.strip('"')[2:-1] for field in template.split(",")]


def test_shipped_template_quotes_every_field_and_has_every_pbx_column():
    columns = template_columns(csv_template())
    assert all(field.startswith('"${') and field.endswith('}"') for field in csv_template().split(","))
    assert [c for c in columns if c.startswith("pbx_")] == list(PBX_VARIABLES)
    assert "sip_reason" not in columns and "sip_invite_failure_phrase" not in columns


@pytest.mark.parametrize("phrase", PHRASES.values(), ids=PHRASES.keys())
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_csv_rows_parse_to_one_row_with_pbx_fields_intact(scenario: str, phrase: str | None):
    template = csv_template()
    columns = template_columns(template)
    for leg in legs(scenario, phrase):
        line = expand(template, leg) + "\n"  # mod_cdr_csv ends each record with a newline
        rows = list(csv.reader(io.StringIO(line), strict=True))
        assert len(rows) == 1 and len(rows[0]) == len(columns)
        row = dict(zip(columns, rows[0]))
        assert {n: row[n] for n in PBX_VARIABLES} == {n: leg[n] for n in PBX_VARIABLES}
        assert row["uuid"] == leg["uuid"] and row["hangup_cause"] == leg["hangup_cause"]


def test_a_whole_csv_file_of_failed_and_answered_legs_keeps_its_shape():
    template = csv_template()
    records = [leg for scenario in SCENARIOS for leg in legs(scenario, HOSTILE_PHRASE)]
    answered = list(hangup_channels("200_ok_bye").values())  # no pbx_* variables: empty columns
    records += answered
    text = "".join(expand(template, leg) + "\n" for leg in records)
    rows = list(csv.reader(io.StringIO(text), strict=True))
    assert len(rows) == len(records)
    assert {len(r) for r in rows} == {len(template_columns(template))}
    assert [r[template_columns(template).index("pbx_code")] for r in rows] == \
        ["409", "409", "503", "503", "480", "480"] + [""] * len(answered)


def test_raw_sip_reason_would_break_the_row_which_is_why_it_is_kept_out():
    """Control: mod_cdr_csv leaves a carrier's quotes alone, so a raw ${sip_reason} column breaks strict CSV."""
    _a_leg, b_leg = carrier_legs("480_reason_q850_17")
    line = expand('"${uuid}","${sip_reason}","${pbx_code}"', annotated(b_leg)) + "\n"
    assert b_leg["sip_reason"] == 'Q.850;cause=17;text="User busy"'
    with pytest.raises(csv.Error):
        list(csv.reader(io.StringIO(line), strict=True))


@pytest.mark.parametrize("phrase", PHRASES.values(), ids=PHRASES.keys())
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_json_cdr_document_and_json_template_parse_with_pbx_fields(scenario: str, phrase: str | None):
    for leg in legs(scenario, phrase):
        # mod_json_cdr: every channel variable, JSON-escaped, under "variables".
        document = json.dumps({"core-uuid": "c", "channel_data": {"direction": leg["direction"]}, "variables": leg},
                              ensure_ascii=False)
        parsed = json.loads(document)["variables"]
        assert {n: parsed[n] for n in PBX_VARIABLES} == {n: leg[n] for n in PBX_VARIABLES}
        # A hand-written JSON template with raw ${pbx_*} substitution (no escaping) stays valid too.
        raw = "{" + ",".join(f'"{n}":"${{{n}}}"' for n in PBX_VARIABLES) + "}"
        assert json.loads(expand(raw, leg)) == {n: leg[n] for n in PBX_VARIABLES}
