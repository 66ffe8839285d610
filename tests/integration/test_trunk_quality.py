"""Trunk quality on a real Asterisk 22: sipp carriers play a known mix through the lifecell-bound trunk, and the
report (over the store `serve` wrote), /metrics and the console's quality API show exactly the values computed by
hand from that mix (delays within the bench's timing resolution).

The mix, one call at a time through `pbx_codes.runtime.app.serve` (AMI listener + FastAGI + SQLite store + console):
  answered after 180 at 300 ms (talk 1.0 s); answered after 180 at 600 ms (talk 2.0 s); 486 Busy Here after 180 at
  400 ms; no answer (180 at 200 ms, Asterisk's dial timer of 2 s ends it); 503 "Simultaneous calls limit reached",
  404 "Not Found" and 409 "Not enough money" at once (no ringing).
Needs root (the bench) and sipp; skipped with the reason otherwise (a failure under CI=true).
"""
from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from integration.live_console import ServeInBackground, ami_logged_in, free_tcp_port, store_rows, write_config
from pbx_codes.cli.main import main
from pbx_codes.quality.measures import percentile
from pbx_codes.testbed.asterisk import AsteriskBench
from pbx_codes.testbed.sipp import new_src, plan_call, render_uac, run_sipp
from support.waiting import block_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the Asterisk bench needs root (debootstrap, chroot)")

SECRET_ENV = "PBX_CODES_QUALITY_AMI_SECRET"
TRUNK = "trunk"
#: How far a measured delay may be from the scenario's pause: sipp's scheduler and Asterisk's event timestamps.
DELAY_TOLERANCE_MS = 80.0

_HEAD = '<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE scenario SYSTEM "sipp.dtd">\n'
_REPLY = """  <send><![CDATA[
SIP/2.0 {status}
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:carrier@[local_ip]:[local_port];transport=[transport]>
{extra}Content-Length: {length}
{body}
]]></send>
"""
_SDP = ("\nv=0\no=carrier 1 1 IN IP[local_ip_type] [local_ip]\ns=-\nc=IN IP[media_ip_type] [media_ip]\nt=0 0\n"
        "m=audio [media_port] RTP/AVP 0\na=rtpmap:0 PCMU/8000")


def reply(status: str, sdp: bool = False) -> str:
    if sdp:
        return _REPLY.format(status=status, extra="Content-Type: application/sdp\n", length="[len]", body=_SDP)
    return _REPLY.format(status=status, extra="", length="0", body="")


def carrier(ring_ms: int | None, final: str) -> str:
    """A carrier that rings after `ring_ms` (None: never) and then answers `final` ("200 OK": answer and wait for
    the caller's BYE; "none": ring until cancelled; else a failure)."""
    invite = ('  <recv request="INVITE" crlf="true">\n    <action><ereg regexp="([0-9]+) INVITE" search_in="hdr" '
              'header="CSeq:" assign_to="whole,invite_cseq"/></action>\n  </recv>\n'
              '  <Reference variables="whole"/>\n' if final == "none"
              else '  <recv request="INVITE" crlf="true"/>\n')  # sipp refuses a variable nothing reads
    steps = [invite, reply("100 Trying").replace(";tag=[pid]SIPpTag01[call_number]", "")]
    if ring_ms is not None:
        steps += [f'  <pause milliseconds="{ring_ms}"/>\n', reply("180 Ringing")]
    if final == "200 OK":
        steps += ['  <pause milliseconds="200"/>\n', reply("200 OK", sdp=True), '  <recv request="ACK"/>\n',
                  '  <recv request="BYE"/>\n', reply("200 OK")]
    elif final == "none":
        steps += ['  <recv request="CANCEL"/>\n', reply("200 OK"),
                  reply("487 Request Terminated").replace("[last_CSeq:]", "CSeq: [$invite_cseq] INVITE"),
                  '  <recv request="ACK"/>\n']
    else:
        steps += [reply(final), '  <recv request="ACK"/>\n']
    return f'{_HEAD}<scenario name="quality mix carrier">\n{"".join(steps)}</scenario>\n'


@dataclass(frozen=True)
class Call:
    what: str
    ring_ms: int | None
    final: str  # what the carrier answers
    talk_ms: int | None = None  # answered calls: the caller hangs up this long after the answer
    dial_timeout_s: int | None = None


MIX = (
    Call("answered 1", 300, "200 OK", talk_ms=1000),
    Call("answered 2", 600, "200 OK", talk_ms=2000),
    Call("busy", 400, "486 Busy Here"),
    Call("no answer", 200, "none", dial_timeout_s=2),
    Call("capacity", None, "503 Simultaneous calls limit reached"),
    Call("not found", None, "404 Not Found"),
    Call("no money", None, "409 Not enough money"),
)
#: By hand from MIX: 7 seizures, 2 answered; NER counts the answered, the busy, the unanswered and the wrong number
#: (the 503 and the carrier's "no money" are network/carrier failures); SEER counts 200, 200, 486; ISA the 503.
EXPECTED = {"seizures": 7, "answered": 2, "asr": 2 / 7, "ner": 5 / 7, "ser": 2 / 7, "seer": 3 / 7, "isa": 1 / 7}
EXPECTED_PDD_MS = [300.0, 600.0, 400.0, 200.0]
EXPECTED_ACD_S = 1.5


def place(bench: AsteriskBench, call: Call) -> str:
    code = "200" if call.final == "200 OK" else "480" if call.final == "none" else call.final[:3]
    plan = plan_call(code, catalog="lifecell")
    headers = {"X-PBX-Codes-Dial-Timeout": str(call.dial_timeout_s)} if call.dial_timeout_s else None
    src = new_src()
    run_sipp(bench, src, [(bench.carrier_port, carrier(call.ring_ms, call.final))],
             render_uac(plan, src, hold_ms=call.talk_ms or 500, headers=headers), plan.exten, what=call.what)
    assert bench.wait_cdr_rows(src), f"no CDR for {call.what}"
    return src


@dataclass
class Run:
    serve: ServeInBackground
    db: Path


@pytest.fixture(scope="module")
def quality_run(asterisk_bench: AsteriskBench, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    if shutil.which("sipp") is None:
        pytest.skip("sipp is not installed (apt package sip-tester)")
    tmp = tmp_path_factory.mktemp("trunk-quality")
    db = tmp / "annotations.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(SECRET_ENV, asterisk_bench.ami_secret)
        mp.delenv("PBX_CODES_CONSOLE_TOKEN", raising=False)
        config = write_config(tmp / "pbx-codes.toml", asterisk_bench, secret_env=SECRET_ENV, alerts=[])
        block_until(lambda: not ami_logged_in(asterisk_bench), 15, what="an earlier AMI session has gone")
        running = ServeInBackground(config, store_url=f"sqlite://{db}", console=f"127.0.0.1:{free_tcp_port()}")
        try:
            running.wait_console()
            block_until(lambda: ami_logged_in(asterisk_bench), 15, what="the AMI listener logged in")
            for call in MIX:
                place(asterisk_bench, call)

            def stored() -> bool:
                running.raise_if_ended()
                return sum(1 for r in store_rows(db) if r["trunk"] == TRUNK and r["attempt"] is not None) >= len(MIX)
            block_until(stored, 20, what="every call of the mix stored")
            yield Run(running, db)
        finally:
            running.stop()


def check(result: dict, where: str) -> None:
    for key, value in EXPECTED.items():
        assert result[key] == pytest.approx(value), (where, key, result)
    p50, p95 = percentile(EXPECTED_PDD_MS, 50), percentile(EXPECTED_PDD_MS, 95)
    assert result["pdd_p50_ms"] == pytest.approx(p50, abs=DELAY_TOLERANCE_MS), (where, result)
    assert result["pdd_p95_ms"] == pytest.approx(p95, abs=DELAY_TOLERANCE_MS), (where, result)
    assert result["acd_s"] == pytest.approx(EXPECTED_ACD_S, abs=DELAY_TOLERANCE_MS / 1000), (where, result)


def test_report_over_the_store_shows_the_mix(quality_run, capsys):
    assert main(["report", "--store", f"sqlite://{quality_run.db}", "--last", "1h", "--json"]) == 0
    by_trunk = {o["trunk"]: o for o in map(json.loads, capsys.readouterr().out.splitlines())}
    result = by_trunk[TRUNK]
    check(result, "report")
    assert result["classes"] == {"address": 1, "answered": 2, "billing": 1, "capacity": 1, "no_answer": 1,
                                 "user_busy": 1}


def test_console_quality_api_shows_the_mix(quality_run):
    items = quality_run.serve.get_json("/api/quality?range=1h")["items"]
    (result,) = [i for i in items if i["trunk"] == TRUNK]
    check(result, "console")
    causes = quality_run.serve.get_json(f"/api/quality/causes?range=1h&trunk={TRUNK}")["items"]
    assert {(c["category"], c["code"]) for c in causes} >= {("billing", "409"), ("capacity", "503")}


def test_metrics_count_the_mix_by_class(quality_run):
    text = quality_run.serve.get("/metrics").decode()
    counts: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(r'pbx_codes_trunk_seizures_total\{(.*)\} (\S+)$', line)
        if match and f'trunk="{TRUNK}"' in match.group(1):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            counts[labels["class"]] = counts.get(labels["class"], 0) + float(match.group(2))
            counts["ner:" + labels["ner"]] = counts.get("ner:" + labels["ner"], 0) + float(match.group(2))
            counts["response:" + labels["response"]] = counts.get("response:" + labels["response"], 0) + \
                float(match.group(2))
    assert counts.get("answered") == 2 and counts.get("billing") == 1 and counts.get("capacity") == 1
    assert counts.get("ner:yes") == 5 and counts.get("ner:no") == 2
    assert counts.get("response:200") == 2 and counts.get("response:ineffective") == 1
    pdd_count = re.search(rf'pbx_codes_trunk_pdd_seconds_count\{{pbx="asterisk",trunk="{TRUNK}"\}} (\S+)', text)
    duration_sum = re.search(rf'pbx_codes_trunk_call_duration_seconds_sum\{{pbx="asterisk",trunk="{TRUNK}"\}} (\S+)',
                             text)
    assert pdd_count and float(pdd_count.group(1)) == len(EXPECTED_PDD_MS)
    assert duration_sum and float(duration_sum.group(1)) == pytest.approx(3.0, abs=2 * DELAY_TOLERANCE_MS / 1000)
