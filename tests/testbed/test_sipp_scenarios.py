"""The sipp scenarios the bench renders: what a carrier may say, and what the bench refuses to put on the wire."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pbx_codes.testbed.sipp import CallPlan, check_phrase, plan_call, render_uac, render_uas


def test_carrier_phrase_goes_into_the_status_line_verbatim() -> None:
    phrase = 'Ліміт "одночасних" дзвінків, вичерпано'
    xml = render_uas(plan_call(503, phrase))
    assert f"SIP/2.0 503 {phrase}\n" in xml


@pytest.mark.parametrize("bad", ["Busy\r\nX-Injected: 1", "Busy\nHere", "Busy\x00", "Busy [field0]", "a]]>b"])
def test_phrases_that_would_break_the_status_line_or_sipp_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        check_phrase(bad)


@pytest.mark.parametrize("code", ["99", "700", "abc", "180", "201", "4860"])
def test_codes_other_than_final_failures_200_or_cancel_are_refused(code: str) -> None:
    with pytest.raises(ValueError):
        plan_call(code)


@pytest.mark.parametrize("catalog", ["life cell", "x\r\nX-Evil: 1", "", "a" * 65])
def test_catalog_names_that_could_inject_a_header_are_refused(catalog: str) -> None:
    with pytest.raises(ValueError):
        plan_call(486, catalog=catalog)


def test_cancel_and_answer_plans_pick_their_own_scenarios() -> None:
    assert plan_call("cancel").kind == "cancel"
    assert plan_call("CANCEL").exten == "100"
    assert plan_call(200) == CallPlan("answer", "200", "OK", "200", None)
    assert plan_call(486).phrase == "Busy Here"


def test_caller_scenario_accepts_every_final_failure_and_names_the_catalog() -> None:
    xml = render_uac(plan_call(409, "Not enough money", "lifecell"), "bench0001")
    codes = {int(c) for c in re.findall(r'<recv response="(\d+)" optional="true" next="failed"/>', xml)}
    assert codes == set(range(300, 700))
    assert "X-PBX-Codes-Catalog: lifecell\n" in xml
    assert "sip:bench0001@" in xml
    assert "@@" not in xml


@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp not installed")
@pytest.mark.parametrize("code", [200, 404, 409, 486, 503, 603, "cancel"])
def test_sipp_loads_every_rendered_scenario(tmp_path: Path, code: int | str) -> None:
    plan = plan_call(code, "Не вистачає \"коштів\"" if code not in (200, "cancel") else "")
    for name, text in (("uas.xml", render_uas(plan)), ("uac.xml", render_uac(plan, "bench0001"))):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        # -m 0 with a timeout: sipp parses the scenario (exit 1 on a bad one), then quits without placing a call.
        result = subprocess.run(
            ["sipp", "-sf", str(path), "-m", "0", "-timeout", "1s", "-nostdin", "-i", "127.0.0.1",
             "-p", "0", "127.0.0.1:9"],
            cwd=tmp_path, capture_output=True, text=True, timeout=20, check=False,
        )
        assert result.returncode == 0, result.stderr
