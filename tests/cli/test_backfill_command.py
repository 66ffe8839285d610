"""`pbx-codes backfill`: a PBX's own CDR files into the store, once, under the live path's row identity."""
from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest

from backfill.json_cdr import write_json_cdrs
from pbx_codes.cli.main import main
from support.paths import FIXTURES

LIVE2 = FIXTURES / "freeswitch" / "live2"
FAILOVER = LIVE2 / "failover_503_then_486.bridge.json.esl.txt"


def rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT uniqueid, code, category, attempt FROM hangups ORDER BY ts, id").fetchall()


@pytest.mark.parametrize("encode_values", [True, False], ids=["encoded", "plain"])
def test_json_cdr_files_are_stored_once_however_often_backfill_runs(tmp_path: Path, capsys,
                                                                   encode_values: bool) -> None:
    legs = write_json_cdrs(tmp_path / "json", [FAILOVER.read_bytes()], encode_values=encode_values)
    db = tmp_path / "store.db"
    assert main(["backfill", "--pbx", "freeswitch", "--store", f"sqlite://{db}", str(tmp_path / "json")]) == 0
    assert f"{legs} new in the store" in capsys.readouterr().out
    first = rows(db)
    assert main(["backfill", "--pbx", "freeswitch", "--store", f"sqlite://{db}", str(tmp_path / "json")]) == 0
    assert f"0 new in the store, {legs} already there" in capsys.readouterr().out
    assert rows(db) == first and len(first) == legs == 3


def test_both_json_cdr_forms_give_the_same_rows(tmp_path: Path, capsys) -> None:
    stored = []
    for encode_values in (True, False):
        folder = tmp_path / str(encode_values)
        write_json_cdrs(folder, [FAILOVER.read_bytes()], encode_values=encode_values)
        db = tmp_path / f"{encode_values}.db"
        assert main(["backfill", "--pbx", "freeswitch", "--store", f"sqlite://{db}", str(folder)]) == 0
        stored.append(rows(db))
    assert stored[0] == stored[1]
    assert ("2d86b2ed-29d7-49fe-a337-a55c3d5c3de7", "503", "capacity", 1) in stored[0]


CDR_CUSTOM = (
    '"2026-11-23 08:34:49","","2026-11-23 08:34:50","1","0","BUSY","1795422889.0","1795422889.0",'
    '"PJSIP/caller-00000000","PJSIP/trunk-00000001","380441234567","0501234567","pbx-codes-outbound-dial","Dial",'
    '"PJSIP/0501234567@trunk,30","","","0","trunk","BUSY","SIP 486 Busy Here","sip","","","","","","",""\n'
    '"2026-11-23 08:35:00","","2026-11-23 08:35:01","1","0","FAILED","1795422900.2","1795422900.2",'
    '"PJSIP/caller-00000002","PJSIP/lifecell-00000003","380441234567","0501234567","pbx-codes-outbound-dial","Dial",'
    '"PJSIP/0501234567@lifecell,30","","","0","lifecell","CONGESTION","SIP 503 Simultaneous calls limit reached",'
    '"lifecell","","","","","","",""\n'
    '"2026-11-23 08:36:00","","2026-11-23 08:36:00","0","0","NO ANSWER","1795422960.4","1795422960.4",'
    '"PJSIP/caller-00000004","","380441234567","100","default","Playback","","","","0","","","","","","","","","","",""\n'
)


def test_asterisk_cdr_custom_rows_are_stored_as_dialed_legs_named_like_the_live_observer(tmp_path: Path,
                                                                                        capsys) -> None:
    from pbx_codes.store.schema import row_identity

    (tmp_path / "pbx_codes.csv").write_text(CDR_CUSTOM, encoding="utf-8")
    db = tmp_path / "store.db"
    for _ in range(2):
        assert main(["backfill", "--pbx", "asterisk", "--store", f"sqlite://{db}",
                     str(tmp_path / "pbx_codes.csv")]) == 0
    with sqlite3.connect(db) as conn:
        got = conn.execute("SELECT rid, linkedid, channel, code, phrase, category, retry FROM hangups "
                           "ORDER BY ts").fetchall()
    assert [g[1:] for g in got] == [
        ("1795422889.0", "PJSIP/trunk-00000001", "486", "Busy Here", "busy", "later"),
        ("1795422900.2", "PJSIP/lifecell-00000003", "503", "Simultaneous calls limit reached", "capacity", "failover"),
    ]
    # named as the live observer of this agent (its instance: the host name by default) names it
    assert got[0][0] == row_identity("asterisk", leg_id="1795422889.1", call_id="1795422889.0",
                                     channel="PJSIP/trunk-00000001", instance=socket.gethostname())


def test_a_missing_path_is_one_clear_line_and_exit_2(tmp_path: Path, capsys) -> None:
    code = main(["backfill", "--pbx", "freeswitch", "--store", f"sqlite://{tmp_path}/s.db", str(tmp_path / "nope")])
    assert code == 2
    assert capsys.readouterr().err.strip() == f"pbx-codes: {tmp_path / 'nope'}: no such file or folder"


# The layout with the FastAGI annotation's outcome fields (asterisk/cdr_custom.conf today): a qualify-down attempt
# (no channel, numbered 1) and the backup trunk's busy (attempt 2), as the annotation wrote them.
CDR_CUSTOM_WITH_OUTCOME = (
    '"2026-11-23 09:00:00","","2026-11-23 09:00:00","0","0","FAILED","1795426000.0","1795426000.0",'
    '"PJSIP/caller-00000010","","380441234567","0501234567","pbx-codes-outbound-dial","Dial",'
    '"PJSIP/0501234567@dead","","","0","dead","CHANUNAVAIL","","sip","","","network","failover","","","0",'
    '"local","unreachable","","1",""\n'
    '"2026-11-23 09:00:00","","2026-11-23 09:00:01","1","0","BUSY","1795426000.0","1795426000.0",'
    '"PJSIP/caller-00000010","PJSIP/backup-00000011","380441234567","0501234567","pbx-codes-outbound-dial","Dial",'
    '"PJSIP/0501234567@backup","","","1","backup","BUSY","SIP 486 Busy Here","sip","486","Busy Here","busy",'
    '"later","","17","1","carrier","carrier_final","17","2","unreachable,busy"\n'
)


def test_asterisk_rows_with_the_annotations_outcome_fields_keep_its_verdict_and_attempts(tmp_path: Path) -> None:
    from pbx_codes.store.schema import row_identity

    (tmp_path / "pbx_codes.csv").write_text(CDR_CUSTOM_WITH_OUTCOME, encoding="utf-8")
    db = tmp_path / "store.db"
    for _ in range(2):
        assert main(["backfill", "--pbx", "asterisk", "--store", f"sqlite://{db}", str(tmp_path)]) == 0
    with sqlite3.connect(db) as conn:
        got = conn.execute("SELECT rid, attempt, channel, code, category, retry, hangup_by, outcome, observed_q850 "
                           "FROM hangups ORDER BY attempt").fetchall()
    assert [g[1:] for g in got] == [
        (1, None, None, "network", "failover", "local", "unreachable", None),
        (2, "PJSIP/backup-00000011", "486", "busy", "later", "carrier", "carrier_final", 17)]
    # the same names the live FastAGI path gives these legs (linkedid + channel; linkedid + attempt without one)
    host = socket.gethostname()  # the agent's default instance, live and backfilled alike
    assert [g[0] for g in got] == [row_identity("asterisk", call_id="1795426000.0", attempt=1, instance=host),
                                   row_identity("asterisk", call_id="1795426000.0",
                                                channel="PJSIP/backup-00000011", instance=host)]


def test_a_store_that_cannot_be_opened_is_named_without_its_password(tmp_path: Path) -> None:
    import argparse

    from pbx_codes.cli.backfill_command import cmd_backfill
    from pbx_codes.cli.common import CliError

    legs = write_json_cdrs(tmp_path / "json", [FAILOVER.read_bytes()], encode_values=False)
    assert legs
    url = "postgresql://pbx:Sup3rSecretPw@127.0.0.1:1/pbx_codes?connect_timeout=2"
    args = argparse.Namespace(pbx="freeswitch", paths=[str(tmp_path / "json")], store=url, catalog=None,
                              config=None, catalog_dir=[])
    with pytest.raises(CliError) as caught:
        cmd_backfill(args)
    assert "Sup3rSecretPw" not in str(caught.value)
    assert "127.0.0.1:1" in str(caught.value)
