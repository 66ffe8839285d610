"""The FreeSWITCH backfill reads mod_json_cdr files (both encode-values forms) and gives every leg exactly the
annotation the live listener gives it, so a leg stored live and again from its CDR is the same row."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from backfill.json_cdr import json_cdr_document, legs_of, write_json_cdrs
from observers.freeswitch_live2 import CAPTURES, EXPECTED, by_role, capture_bytes, resolver
from pbx_codes.backfill import read_observations
from pbx_codes.cli.main import main
from pbx_codes.observers.freeswitch import replay
from pbx_codes.observers.freeswitch_cdr import decoded_variables, is_url_encoded, variables_from_json_cdr

RESOLVER = resolver()


def comparable(annotation) -> dict:
    """Everything but the moment the event was sent (a CDR has the leg's end time instead)."""
    return annotation.to_dict() | {"timestamp": None}


@pytest.mark.parametrize("encode_values", [True, False], ids=["encoded", "plain"])
@pytest.mark.parametrize("capture", CAPTURES)
def test_json_cdr_backfill_gives_every_leg_what_the_listener_gives_it(capture: str, encode_values: bool,
                                                                    tmp_path: Path) -> None:
    write_json_cdrs(tmp_path, [capture_bytes(capture)], encode_values=encode_values)
    observations, stats = read_observations("freeswitch", [tmp_path])
    annotations = [RESOLVER.resolve(o) for o in observations]
    assert by_role(capture, annotations) == EXPECTED[capture]
    live = {a.observation.leg_id: comparable(a) for a in replay(capture_bytes(capture), RESOLVER)}
    assert {a.observation.leg_id: comparable(a) for a in annotations} == live
    assert stats.malformed == 0


def test_url_encoded_values_are_decoded_and_plain_ones_are_left_as_written() -> None:
    (headers, *_) = legs_of(capture_bytes("failover_503_then_486.bridge"))
    headers = dict(headers, variable_sip_invite_failure_phrase='Not enough money %41 "quoted"')
    encoded = json_cdr_document(headers, encode_values=True)
    plain = json_cdr_document(headers, encode_values=False)
    assert encoded["variables"]["sip_invite_failure_phrase"] == "Not%20enough%20money%20%2541%20%22quoted%22"
    assert is_url_encoded(encoded["variables"]) and not is_url_encoded(plain["variables"])
    for doc in (encoded, plain):
        assert variables_from_json_cdr(doc)["sip_invite_failure_phrase"] == 'Not enough money %41 "quoted"'
    # FreeSWITCH's encoder always encodes the space and ':' every CDR's start_stamp holds: that decides the form
    assert decoded_variables({"start_stamp": "2026-12-01 09:06:18", "a": "100%41"})["a"] == "100%41"
    assert decoded_variables({"start_stamp": "2026-12-01%2009%3A06%3A18", "a": "100%2541"})["a"] == "100%41"


def test_replay_store_stores_every_leg_the_listener_would_answered_ones_included(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    for capture in ("answered_carrier_bye.bridge", "failover_503_then_486.bridge"):
        path = tmp_path / f"{capture}.json.esl.txt"
        path.write_bytes(capture_bytes(capture))
        assert main(["replay", "--pbx", "freeswitch", str(path), "--store", f"sqlite://{db}"]) == 0
    with sqlite3.connect(db) as conn:
        answered = conn.execute("SELECT category, hangup_by, outcome FROM hangups WHERE outcome = 'answered'")
        assert answered.fetchall() == [("ok", "carrier", "answered")] * 2
        route = conn.execute("SELECT attempt, code, category, retry, trunk FROM hangups "
                             "WHERE linkedid = 'f0a792df-de81-49d1-a051-d15739e56f45' ORDER BY ts, id").fetchall()
    assert route == [(1, "503", "capacity", "failover", "lifecell"), (2, "486", "busy", "later", "lab_gw2"),
                     (None, "486", "busy", "later", "lab_gw2")]


def test_backfill_after_replay_store_adds_nothing_the_live_path_already_stored(tmp_path: Path, capsys) -> None:
    db = tmp_path / "s.db"
    capture = "failover_503_then_486.bridge"
    (tmp_path / "cap.txt").write_bytes(capture_bytes(capture))
    assert main(["replay", "--pbx", "freeswitch", str(tmp_path / "cap.txt"), "--store", f"sqlite://{db}"]) == 0
    write_json_cdrs(tmp_path / "cdr", [capture_bytes(capture)], encode_values=True)
    capsys.readouterr()
    assert main(["backfill", "--pbx", "freeswitch", "--store", f"sqlite://{db}", str(tmp_path / "cdr")]) == 0
    assert "0 new in the store, 3 already there" in capsys.readouterr().out


def test_a_cdr_csv_without_the_variables_that_tell_a_freeswitch_made_503_is_not_claimed_exact(tmp_path: Path) -> None:
    summary = json.loads((Path(__file__).parents[1] / "fixtures" / "freeswitch" / "live2" /
                          "gateway_down.bridge.summary.json").read_text())
    lines = [row["_raw"] for row in summary["cdr_csv"].values()]
    (tmp_path / "Master.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    observations, stats = read_observations("freeswitch", [tmp_path / "Master.csv"])
    assert stats.records == 2 and len(observations) == 2
    assert {(o.sip_code, o.certain) for o in observations} == {("503", False)}
