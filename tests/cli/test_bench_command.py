"""`pbx-codes bench call`: a real call through the bench when it can run here, and clear refusals otherwise."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from pbx_codes.cli.main import main
from pbx_codes.testbed.asterisk import AsteriskBench


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


def _run_paused(bench: AsteriskBench, argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a bench command while the session's Asterisk is paused (one Asterisk per root filesystem)."""
    bench.stop()
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False, cwd=cwd)
    finally:
        bench.start()


def test_bench_call_failover_prints_every_cdr_record_and_the_store_rows_of_each_attempt(
        asterisk_bench: AsteriskBench, tmp_path: Path) -> None:
    result = _run_paused(asterisk_bench, [
        sys.executable, "-m", "pbx_codes.cli.main", "bench", "call", "--failover", "503 Service Unavailable",
        "200 OK", "--store", f"sqlite:///{tmp_path / 'store.db'}"])
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    records = [line for line in lines if "store" not in line]
    stored = [line["store"] for line in lines if "store" in line]
    assert [r["dstchannel"].rsplit("-", 1)[0] for r in records] == ["PJSIP/trunk", "PJSIP/backup"]
    assert records[-1]["pbx_attempts"] == "1:trunk:503:capacity:failover:carrier_final;2:backup:200:ok:no:answered"
    assert [(r["attempt"], r["code"], r["outcome"]) for r in stored] == [
        (1, "503", "carrier_final"), (2, "200", "answered")]


def test_bench_call_scenario_prints_the_shapes_cdr_record(asterisk_bench: AsteriskBench) -> None:
    result = _run_paused(asterisk_bench, [sys.executable, "-m", "pbx_codes.cli.main", "bench", "call",
                                          "--scenario", "ring-timeout"])
    assert result.returncode == 0, result.stderr
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert (row["pbx_outcome"], row["pbx_category"], row["pbx_retry"]) == ("ring_timeout", "no_answer", "later")


def _install_wheel(tmp_path: Path) -> Path:
    """Build the project's wheel from a copy of the sources and install it alone into a new virtualenv whose
    dependencies come from this one; returns the virtualenv's ``bin``."""
    repo = Path(__file__).resolve().parents[2]
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("pbx_codes", "asterisk"):
        shutil.copytree(repo / name, src / name, ignore=ignore)  # follows the package's link to asterisk/
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(repo / name, src / name)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(dist), str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = dist.glob("pbx_codes-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", str(wheel)], check=True, capture_output=True, timeout=300)
    # The dependencies (aiohttp, orjson...) from this interpreter's site-packages, as a plain path: its .pth files,
    # the checkout's editable install among them, are not run, so pbx_codes can only come from the wheel.
    (site,) = (venv / "lib").glob("python3*/site-packages")
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    return venv / "bin"


def test_bench_call_works_from_an_installed_wheel(asterisk_bench: AsteriskBench, tmp_path: Path) -> None:
    bin_dir = _install_wheel(tmp_path)
    where = subprocess.run([str(bin_dir / "python"), "-c", "import pbx_codes; print(pbx_codes.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path)
    assert where.stdout.startswith(str(tmp_path / "venv"))
    helped = subprocess.run([str(bin_dir / "pbx-codes"), "bench", "call", "--help"], capture_output=True, text=True,
                            check=False, cwd=tmp_path)
    assert helped.returncode == 0 and "--scenario" in helped.stdout and "--failover" in helped.stdout
    result = _run_paused(asterisk_bench, [str(bin_dir / "pbx-codes"), "bench", "call", "--scenario",
                                          "answered-carrier-bye"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert (row["pbx_code"], row["pbx_outcome"], row["pbx_hangup_by"]) == ("200", "answered", "carrier")


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


@pytest.mark.parametrize("argv", [["--failover", "180 Ringing"], ["--failover", "503 x[y]"],
                                  ["--failover", "503 a", "503 b", "503 c", "503 d", "200 OK"]])
def test_bench_call_refuses_a_failover_chain_sipp_cannot_play_with_exit_2(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "call", *argv]) == 2
    assert capsys.readouterr().err.startswith("pbx-codes: ")


def test_bench_call_knows_only_asterisk() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", "call", "--pbx", "freeswitch", "--code", "486"])
    assert exc.value.code == 2
