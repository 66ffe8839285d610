"""Real calls through a real Asterisk 22 (the shipped dialplan and CDR config) to a sipp carrier.

These prove what the rest of pbx-codes assumes about Asterisk: the carrier's phrase reaches the dialplan intact
through HANGUPCAUSE, the call keeps one CDR record carrying the annotations, and the FastAGI step neither breaks a
call when no server listens nor loses what a server writes.
"""
from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

import pytest

from pbx_codes.testbed.asterisk import AsteriskBench


def test_busy_486_yields_one_cdr_record_with_busy_disposition(asterisk_bench: AsteriskBench) -> None:
    rows = asterisk_bench.place_call(486, "Busy Here")
    assert len(rows) == 1
    row = rows[0]
    assert row["disposition"] in {"BUSY", "FAILED"}
    assert row["pbx_dialstatus"] == "BUSY"
    assert row["dstchannel"].startswith("PJSIP/trunk-")


def test_hangup_handler_stores_the_trunk_legs_tech_cause(asterisk_bench: AsteriskBench) -> None:
    rows = asterisk_bench.place_call(486, "Busy Here")
    assert [row["pbx_rawcause"] for row in rows] == ["SIP 486 Busy Here"]


def test_carrier_phrase_409_not_enough_money_arrives_intact(asterisk_bench: AsteriskBench) -> None:
    rows = asterisk_bench.place_call(409, "Not enough money", catalog="lifecell")
    assert len(rows) == 1
    assert rows[0]["pbx_rawcause"] == "SIP 409 Not enough money"
    # Asterisk's own verdict differs from the carrier's words: that gap is why pbx-codes exists.
    assert rows[0]["pbx_dialstatus"] == "CHANUNAVAIL"


@pytest.mark.parametrize(
    "code, phrase",
    [
        (503, 'Ліміт "одночасних" дзвінків, вичерпано'),
        (480, "Абонент временно недоступен; попробуйте позже"),
        (404, "Rufnummer 'nicht' vergeben, bitte prüfen"),
    ],
)
def test_quoted_and_non_ascii_phrases_survive_every_cdr_backend(
    asterisk_bench: AsteriskBench, code: int, phrase: str
) -> None:
    rows = asterisk_bench.place_call(code, phrase)
    expected = f"SIP {code} {phrase}"
    assert [row["pbx_rawcause"] for row in rows] == [expected]
    uniqueid = rows[0]["uniqueid"]
    csv_rows = [row for row in asterisk_bench.cdr_csv_rows() if row["uniqueid"] == uniqueid]
    sql_rows = [row for row in asterisk_bench.cdr_sqlite_rows() if row["uniqueid"] == uniqueid]
    assert [row["pbx_rawcause"] for row in csv_rows] == [expected]
    assert [row["pbx_rawcause"] for row in sql_rows] == [expected]


def test_answered_call_is_recorded_as_answered(asterisk_bench: AsteriskBench) -> None:
    rows = asterisk_bench.place_call(200)
    assert len(rows) == 1
    assert rows[0]["disposition"] == "ANSWERED"
    assert rows[0]["pbx_dialstatus"] == "ANSWER"
    assert rows[0]["answer"] != ""


def test_cancelled_call_keeps_the_trunk_legs_last_provisional(asterisk_bench: AsteriskBench) -> None:
    rows = asterisk_bench.place_call("cancel")
    assert len(rows) == 1
    assert rows[0]["disposition"] == "NO ANSWER"
    assert rows[0]["pbx_dialstatus"] == "CANCEL"
    assert rows[0]["pbx_rawcause"] == "SIP 180 Ringing"


def test_catalog_comes_from_the_trunk_endpoint_when_the_call_names_none(asterisk_bench: AsteriskBench) -> None:
    rows = asterisk_bench.place_call(486)
    assert [row["pbx_catalog"] for row in rows] == [asterisk_bench.trunk_catalog]


def test_catalog_named_by_the_calling_channel_wins(asterisk_bench: AsteriskBench) -> None:
    rows = asterisk_bench.place_call(486, catalog="lifecell")
    assert [row["pbx_catalog"] for row in rows] == ["lifecell"]


def test_call_survives_when_no_fastagi_server_listens(asterisk_bench: AsteriskBench) -> None:
    rows = asterisk_bench.place_call(503, "Service Unavailable")
    assert len(rows) == 1
    assert rows[0]["pbx_rawcause"] == "SIP 503 Service Unavailable"
    assert rows[0]["pbx_code"] == ""  # nobody annotated: the AGI step failed quietly


@dataclass
class FakeFastAgi:
    """A one-connection FastAGI server: records what Asterisk sent, answers with fixed commands."""

    port: int
    commands: list[str]
    env: dict[str, str] = field(default_factory=dict)
    replies: list[str] = field(default_factory=list)
    error: BaseException | None = None

    def serve_one(self, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
            with conn, conn.makefile("rwb") as stream:
                while (line := stream.readline().decode("utf-8").rstrip("\n")) != "":
                    key, _, value = line.partition(": ")
                    self.env[key] = value
                for command in self.commands:
                    stream.write(command.encode("utf-8") + b"\n")
                    stream.flush()
                    self.replies.append(stream.readline().decode("utf-8").rstrip("\n"))
        except BaseException as exc:  # surfaced by the test
            self.error = exc


def test_fastagi_gets_bleg_dialstatus_catalog_and_its_cdr_writes_land_in_the_one_record(
    asterisk_bench: AsteriskBench,
) -> None:
    host, port = asterisk_bench.agi_address.rsplit(":", 1)
    server = FakeFastAgi(
        port=int(port),
        commands=[
            'GET FULL VARIABLE "${PBX_CODES_RAWCAUSE}"',
            'SET VARIABLE "CDR(pbx_code)" "409"',
            'SET VARIABLE "CDR(pbx_phrase)" "Not \\"enough\\" money"',
        ],
    )
    with socket.create_server((host, int(port))) as listener:
        listener.settimeout(30)
        thread = threading.Thread(target=server.serve_one, args=(listener,), daemon=True)
        thread.start()
        rows = asterisk_bench.place_call(409, "Not enough money", catalog="lifecell")
        thread.join(timeout=30)
    assert server.error is None
    assert server.env["agi_network_script"] == "annotate"
    assert server.env["agi_arg_1"].startswith("PJSIP/trunk-")
    assert server.env["agi_arg_2"] == "CHANUNAVAIL"
    assert server.env["agi_arg_3"] == "lifecell"
    assert server.env["agi_arg_4"] == "trunk"
    assert server.replies[0] == "200 result=1 (SIP 409 Not enough money)"
    assert server.replies[1:] == ["200 result=1", "200 result=1"]
    assert len(rows) == 1
    assert rows[0]["pbx_code"] == "409"
    assert rows[0]["pbx_phrase"] == 'Not "enough" money'
    assert rows[0]["dstchannel"] == server.env["agi_arg_1"]
