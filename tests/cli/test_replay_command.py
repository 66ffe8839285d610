"""`pbx-codes replay`: the listeners' own path over real captures, JSON per failed leg, and `--store`."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from pbx_codes.cli.main import main
from support.paths import FIXTURES as FIXTURES_ROOT

FIXTURES = FIXTURES_ROOT


def run(capsys, *argv: str) -> tuple[int, list[dict], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines() if line.startswith("{")], err


REQUIRED = {"uniqueid", "linkedid", "code", "phrase", "q850", "catalog", "matched", "category", "retry", "texts",
            "hangup_by"}


def test_asterisk_capture_gives_the_carrier_phrase_and_provider_meaning(capsys) -> None:
    code, rows, _ = run(capsys, "replay", "--pbx", "asterisk", str(FIXTURES / "asterisk" / "limit503.ami.txt"),
                        "--catalog", "lifecell", "--json")
    assert code == 0 and len(rows) == 1
    row = rows[0]
    assert set(row) >= REQUIRED
    assert (row["code"], row["phrase"], row["category"], row["retry"]) == (
        "503", "Simultaneous calls limit reached", "capacity", "failover")
    assert row["linkedid"] != row["uniqueid"]


def test_freeswitch_capture_gives_one_object_per_failed_leg_with_the_same_keys(capsys) -> None:
    code, rows, _ = run(capsys, "replay", "--pbx", "freeswitch",
                        str(FIXTURES / "freeswitch" / "409_not_enough_money.direct.json.esl.txt"),
                        "--catalog", "lifecell", "--json")
    assert code == 0 and len(rows) == 1
    assert set(rows[0]) >= REQUIRED
    assert (rows[0]["code"], rows[0]["phrase"], rows[0]["category"]) == ("409", "Not enough money", "billing")


def test_answered_call_capture_gives_its_leg_as_ok_with_who_hung_up(capsys) -> None:
    code, rows, err = run(capsys, "replay", "--pbx", "freeswitch",
                          str(FIXTURES / "freeswitch" / "200_ok_bye.direct.json.esl.txt"), "--json")
    assert code == 0 and err == ""
    assert [(r["code"], r["category"], r["hangup_by"]) for r in rows] == [("200", "ok", "carrier")]


def test_unreadable_file_is_exit_two(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "replay", "--pbx", "asterisk", str(tmp_path / "missing.txt"))
    assert code == 2 and "cannot be read" in err


def test_replay_store_records_what_it_printed(capsys, tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    code, rows, _ = run(capsys, "replay", "--pbx", "asterisk", str(FIXTURES / "asterisk" / "money409.ami.txt"),
                        "--catalog", "lifecell", "--json", "--store", f"sqlite:///{db}")
    assert code == 0 and len(rows) == 1
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        assert "hangups" in tables
        table = "hangups"
        stored = conn.execute(f"select code, category from {table}").fetchall()
    assert stored == [("409", "billing")]


def test_a_store_url_that_cannot_be_read_is_one_line_without_its_password(capsys) -> None:
    url = "postgresql://pbx:pa#ss%zz@127.0.0.1/cdr"      # libpq refuses the escape; "#" fooled urllib's reading
    code, _, err = run(capsys, "replay", "--pbx", "asterisk", str(FIXTURES / "asterisk" / "money409.ami.txt"),
                       "--catalog", "lifecell", "--json", "--store", url)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "pa#ss" not in err and "#ss" not in err and "ss%zz" not in err
