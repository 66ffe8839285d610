"""`pbx-codes bench call`: a real call through the bench when it can run here, and clear refusals otherwise."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from pbx_codes.bench.asterisk import AsteriskBench
from pbx_codes.cli.main import main


def test_bench_call_prints_the_annotated_cdr_record_as_json(asterisk_bench: AsteriskBench) -> None:
    # The fixture skips this test where the bench cannot run. The command starts its own Asterisk in the same
    # root filesystem (one at a time), so the session's is paused meanwhile.
    asterisk_bench.stop()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pbx_codes.cli.main", "bench", "call", "--pbx", "asterisk", "--code", "503",
             "--phrase", "Simultaneous calls limit reached", "--catalog", "lifecell", "--json"],
            capture_output=True, text=True, timeout=300, check=False)
    finally:
        asterisk_bench.start()
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 1
    row = rows[0]
    assert row["pbx_rawcause"] == "SIP 503 Simultaneous calls limit reached"
    assert (row["pbx_catalog"], row["pbx_code"], row["pbx_phrase"]) == (
        "lifecell", "503", "Simultaneous calls limit reached")
    assert (row["pbx_category"], row["pbx_retry"], row["pbx_q850"], row["pbx_exact"]) == (
        "capacity", "failover", "34", "1")
    assert row["pbx_reason"] == "перевищено ліміт одночасних викликів."


def test_bench_call_without_a_root_filesystem_exits_2_and_says_how_to_build_one(
        tmp_path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    code = main(["bench", "call", "--pbx", "asterisk", "--code", "486", "--rootfs", str(tmp_path / "none")])
    assert code == 2
    err = capsys.readouterr().err
    assert "no provisioned Asterisk root filesystem" in err and "--provision" in err


def test_bench_call_as_a_normal_user_exits_2_and_says_root_is_needed(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["bench", "call", "--pbx", "asterisk", "--code", "486"]) == 2
    assert "needs root" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--code", "180"], ["--code", "486", "--phrase", "Busy\r\nX-Evil: 1"],
                                  ["--code", "486", "--catalog", "life cell"]])
def test_bench_call_refuses_what_sipp_or_sip_cannot_carry_with_exit_2(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "call", "--pbx", "asterisk", *argv]) == 2
    assert capsys.readouterr().err.startswith("pbx-codes: ")


def test_bench_call_knows_only_asterisk() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", "call", "--pbx", "freeswitch", "--code", "486"])
    assert exc.value.code == 2
