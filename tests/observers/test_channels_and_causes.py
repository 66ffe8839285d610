"""Channel names, cause readings and CDR dispositions: the PBX knowledge enrich, backfill and writeback import."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pbx_codes.model import Outcome
from pbx_codes.observers.asterisk_causes import DIAL_STATUS_OUTCOME, DISPOSITION_NO_CAUSE, DISPOSITION_Q850
from pbx_codes.observers.causes import NORMAL_CAUSE_NAMES, NORMAL_Q850, reason_q850, sip_code
from pbx_codes.observers.channels import (
    ASTERISK_SUFFIX_BYTES,
    ASTERISK_SUFFIX_TEXT,
    asterisk_trunk,
    freeswitch_gateway,
    trunk_of_channel,
)
from pbx_codes.observers.freeswitch import FREESWITCH_CAUSES, HANGUP_CAUSE_Q850

PACKAGE = Path(__file__).resolve().parents[2] / "pbx_codes"


@pytest.mark.parametrize("channel, trunk", [
    ("PJSIP/lifecell-trunk-00000009", "lifecell-trunk"), ("SIP/gw-0000000a", "gw"), ("PJSIP/gw", "gw"),
    ("Local/100@ctx-00000001;2", None), ("DAHDI/1-2", "1-2"), ("sofia/gateway/gw-mango/380441234567", "gw-mango"),
    ("sofia/internal/1000@10.0.0.1", None), ("", None), (None, None), ("garbage", None),
])
def test_the_trunk_of_a_channel_named_by_either_pbx(channel: str | None, trunk: str | None) -> None:
    assert trunk_of_channel(channel) == trunk


def test_each_pbx_reads_only_its_own_channel_names() -> None:
    assert asterisk_trunk("PJSIP/trunk-0000000f") == "trunk" and freeswitch_gateway("PJSIP/trunk-0000000f") is None
    assert freeswitch_gateway("sofia/gateway/gw1/409") == "gw1"


def test_the_channel_suffix_reads_the_same_as_text_and_as_bytes() -> None:
    for suffix, is_one in (("0000000a", True), ("0000000a;1", True), ("0000000", False), ("zzzzzzzz", False)):
        assert bool(ASTERISK_SUFFIX_TEXT.fullmatch(suffix)) is is_one
        assert bool(ASTERISK_SUFFIX_BYTES.fullmatch(suffix.encode())) is is_one


def test_sip_codes_and_reason_headers() -> None:
    assert [sip_code(v) for v in ("486", " sip:409 ", "SIP:503", "700", "48", "", None)] == [
        "486", "409", "503", None, None, None, None]
    assert reason_q850('Q.850;cause=17;text="User busy"') == 17
    assert reason_q850("Q.850;cause=200") is None  # above 127: not a Q.850 cause


def test_both_views_of_a_normal_end_agree() -> None:
    """FreeSWITCH's names of an ordinary end are the Q.850 causes counted normal, or its own non-failures."""
    for name in NORMAL_CAUSE_NAMES - {""}:
        assert HANGUP_CAUSE_Q850.get(name, -1) in NORMAL_Q850 or name in FREESWITCH_CAUSES or name == "NONE"
    assert {n for n, q in HANGUP_CAUSE_Q850.items() if q == 16} <= NORMAL_CAUSE_NAMES


def test_dispositions_imply_causes_and_outcomes() -> None:
    assert DISPOSITION_Q850["BUSY"] == 17 and "FAILED" in DISPOSITION_NO_CAUSE and "FAILED" not in DISPOSITION_Q850
    assert DIAL_STATUS_OUTCOME["NO ANSWER"] is Outcome.RING_TIMEOUT


def test_no_pbx_pattern_is_written_outside_observers() -> None:
    """The channel-suffix, gateway, SIP-code and Reason patterns are compiled in observers/ only."""
    patterns = ("[0-9a-fA-F]{8}", "sofia/gateway", "Q\\.850", "[1-6]\\d\\d")
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "observers":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
                text = node.value if isinstance(node.value, str) else node.value.decode("latin-1")
                found += [f"{path.relative_to(PACKAGE)}: {p}" for p in patterns if p in text]
    assert found == []
