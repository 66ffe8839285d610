"""pbx-codes on a real Asterisk 22: sipp carriers fail real calls, the FastAGI server writes the CDR, AMI publishes.

One Asterisk serves the whole test session (``asterisk_bench``); this module starts the real pbx-codes FastAGI
server and AMI listener in-process on the ports that Asterisk was configured with, the AMI secret handed over in
an environment variable as ``pbx-codes serve`` reads it. Calls go one at a time (a few hundred ms each), so every
CDR record, AGI session and published annotation can be tied to its call.

Decisions the tests pin down:
- An answered call is annotated too, as ``200`` / ``ok``: a CDR column that is empty only for answered calls
  could not tell "answered" from "pbx-codes was down". The AMI listener publishes it too, as answered.
- The AMI listener learns the dialplan's catalog for each dialed leg from the predial step's ``UserEvent``, so
  what it publishes (the store's row) is the CDR's annotation field by field.
"""
from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from integration.asterisk_calls import CATALOG_DIR, ami_annotations_for, place, seed_entries
from pbx_codes.catalog import Entry
from pbx_codes.model import Annotation
from pbx_codes.observers.asterisk import parse_tech_cause
from pbx_codes.protocols import safe_value
from pbx_codes.testbed.asterisk import AsteriskBench
from pbx_codes.testbed.inprocess import PbxCodesInProcess
from pbx_codes.writeback.agi_annotate import CDR_FIELDS, PLAIN_VALUE, annotation_fields
from support.waiting import block_until

SECRET_ENV = "PBX_CODES_IT_AMI_SECRET"
WRITTEN = (*CDR_FIELDS, "pbx_attempts")


def commands_per_call(row: dict[str, str]) -> int:
    """One GET FULL VARIABLE for the channel, one for the dialed leg's causes, one EXEC MSet for the plain values,
    then one SET VARIABLE per value MSet cannot carry (free text): the whole session."""
    return 3 + sum(1 for name in WRITTEN if not PLAIN_VALUE.match(row[name]))
SEEDS = seed_entries()


@pytest.fixture(scope="module")
def pbx(asterisk_bench: AsteriskBench) -> Iterator[PbxCodesInProcess]:
    """The real FastAGI server and AMI listener for this module (other modules expect no AGI server)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(SECRET_ENV, asterisk_bench.ami_secret)
        with PbxCodesInProcess(asterisk_bench, language="uk", catalog_dirs=[str(CATALOG_DIR)], ami=True,
                               ami_secret_env=SECRET_ENV) as running:
            yield running


def _expected(catalog_id: str, entry: Entry) -> dict[str, str]:
    return {
        "pbx_catalog": catalog_id,
        "pbx_code": entry.code,
        "pbx_phrase": entry.phrase or "",
        "pbx_category": entry.category.value,
        "pbx_retry": entry.retry.value,
        "pbx_reason": safe_value(entry.texts["uk"]),  # the CDR value is bounded to 255 bytes
        "pbx_q850": "" if entry.q850 is None else str(entry.q850),
        "pbx_exact": "1",
        "pbx_hangup_by": "carrier",
        "pbx_outcome": "carrier_final",
        "pbx_attempt": "1",
    }


def _annotated(row: dict[str, str]) -> dict[str, str]:
    """The written fields but the observed Q.850 cause (Asterisk's own mapping of each code, checked apart)."""
    return {name: row[name] for name in CDR_FIELDS if name != "pbx_q850_observed"}


@pytest.mark.parametrize("catalog_id, entry", SEEDS,
                         ids=[f"{cid}-{e.code}-{(e.phrase or '')[:24]}" for cid, e in SEEDS])
def test_seed_code_answered_with_its_exact_phrase_yields_one_annotated_cdr_record(
        asterisk_bench: AsteriskBench, pbx: PbxCodesInProcess, catalog_id: str, entry: Entry) -> None:
    call = place(asterisk_bench, pbx, entry.code, entry.phrase or "", catalog=catalog_id)
    row = call.row
    assert _annotated(row) == _expected(catalog_id, entry)
    assert row["pbx_q850_observed"].isdigit()  # the cause Asterisk gave the trunk leg, beside the catalog's
    assert row["pbx_attempts"] == f"1:trunk:{entry.code}:{entry.category.value}:{entry.retry.value}:carrier_final"
    assert row["pbx_rawcause"] == f"SIP {entry.code} {entry.phrase}"
    assert (call.agi_sessions, call.agi_commands, call.agi_failed_replies) == (1, commands_per_call(row), 0)
    (published,) = ami_annotations_for(pbx, row["dstchannel"])
    assert as_cdr(published) == _annotated(row)


def as_cdr(annotation: Annotation) -> dict[str, str]:
    """The CDR fields the FastAGI path would write for `annotation` (the store's row, as the CDR says it)."""
    fields = annotation_fields(annotation, "uk")
    return {name: safe_value(fields[name]) for name in CDR_FIELDS if name != "pbx_q850_observed"}


def test_the_two_lifecell_500_entries_are_told_apart_by_the_carriers_phrase(
        asterisk_bench: AsteriskBench, pbx: PbxCodesInProcess) -> None:
    plain = place(asterisk_bench, pbx, 500, "Service Unavailable", catalog="lifecell").row
    forwarding = place(asterisk_bench, pbx, 500, "Service Unavailable. X-FWD-Original incorrect",
                       catalog="lifecell").row
    assert (plain["pbx_category"], plain["pbx_retry"]) == ("network", "failover")
    assert (forwarding["pbx_category"], forwarding["pbx_retry"]) == ("config", "no")
    assert plain["pbx_reason"] == "SIP сервіс недоступний."
    assert forwarding["pbx_reason"] == "некоректно вказана переадресація дзвінка."


def test_cancelled_call_is_annotated_as_cancelled_487(asterisk_bench: AsteriskBench,
                                                       pbx: PbxCodesInProcess) -> None:
    call = place(asterisk_bench, pbx, "cancel", catalog="lifecell")
    row = call.row
    assert row["pbx_dialstatus"] == "CANCEL"
    assert (row["pbx_code"], row["pbx_category"], row["pbx_retry"], row["pbx_phrase"]) == (
        "487", "cancelled", "no", "")
    assert row["pbx_reason"] == "завершення дзвінка пакетами bye або cancel, не є помилкою."
    published = ami_annotations_for(pbx, row["dstchannel"])
    assert [(a.code, a.category.value) for a in published] == [("487", "cancelled")]


def test_answered_call_is_annotated_ok_and_published_as_ok_not_as_a_failure(asterisk_bench: AsteriskBench,
                                                                           pbx: PbxCodesInProcess) -> None:
    call = place(asterisk_bench, pbx, 200, catalog="lifecell")
    row = call.row
    assert row["disposition"] == "ANSWERED"
    assert (row["pbx_code"], row["pbx_category"], row["pbx_retry"]) == ("200", "ok", "no")
    assert call.agi_failed_replies == 0
    # The listener reports the answered leg too (the denominator of failure rates), as ok, never as a failure.
    published = ami_annotations_for(pbx, row["dstchannel"])
    assert [(a.code, a.category.value) for a in published] == [("200", "ok")]


def test_trunk_endpoints_catalog_explains_a_call_that_names_none(asterisk_bench: AsteriskBench,
                                                                 pbx: PbxCodesInProcess) -> None:
    row = place(asterisk_bench, pbx, 486, "Busy Here").row
    assert row["pbx_catalog"] == asterisk_bench.trunk_catalog == "bench-trunk"
    assert (row["pbx_category"], row["pbx_retry"]) == ("busy", "failover")
    assert row["pbx_reason"] == "транк стенду: абонент зайнятий, спробуйте інший маршрут."
    (published,) = ami_annotations_for(pbx, row["dstchannel"])
    assert as_cdr(published) == _annotated(row)  # the store reads the leg through the endpoint's catalog too


HOSTILE_PHRASES = {
    "quotes-backslashes-semicolons": 'Limit "reached" \\"x\\" \\ ; SET VARIABLE CDR(pbx_category) "ok"; \\',
    "non-ascii": "Ліміт «одночасних» дзвінків вичерпано — Лимит достигнут 限制",
    "invalid-utf8": "Limit \udcff\udcfe reached \udcc3(",
    "2kb": "Simultaneous calls limit reached " + "Ж" * 1000,
}


@pytest.mark.parametrize("phrase", list(HOSTILE_PHRASES.values()), ids=list(HOSTILE_PHRASES))
def test_hostile_carrier_phrase_is_stored_intact_or_truncated_and_adds_no_command(
        asterisk_bench: AsteriskBench, pbx: PbxCodesInProcess, phrase: str) -> None:
    call = place(asterisk_bench, pbx, 503, phrase, catalog="lifecell")
    row = call.row
    readable = phrase.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    # The verdict is the 503 one: no part of the phrase became an argument or a command of its own.
    assert (row["pbx_code"], row["pbx_category"], row["pbx_retry"]) == ("503", "capacity", "failover")
    assert row["pbx_reason"] == "перевищено ліміт одночасних викликів."
    assert row["pbx_phrase"] == safe_value(readable)  # intact, or cut to 255 bytes on a character boundary
    assert (call.agi_sessions, call.agi_commands, call.agi_failed_replies) == (1, commands_per_call(row), 0)
    # The dialplan's raw copy keeps the carrier's bytes (its first 255); the CSV backend quotes them safely.
    raw = f"SIP 503 {phrase}".encode("utf-8", "surrogateescape")[:255].decode("utf-8", "replace")
    csv_rows = [r for r in asterisk_bench.cdr_csv_rows() if r["uniqueid"] == row["uniqueid"]]
    assert [r["pbx_rawcause"] for r in csv_rows] == [raw]
    assert [r["pbx_phrase"] for r in csv_rows] == [row["pbx_phrase"]]
    # AMI: the phrase came back in one Getvar response, bounded the same way, and made one annotation.
    published = ami_annotations_for(pbx, row["dstchannel"])
    assert [(a.code, a.phrase) for a in published] == [parse_tech_cause(f"SIP 503 {readable}")]


def test_ami_connection_dropped_mid_run_reconnects_and_every_cdr_is_still_annotated(
        asterisk_bench: AsteriskBench, pbx: PbxCodesInProcess) -> None:
    connections = pbx.ami_connections
    pbx.drop_ami_connection()
    during = [place(asterisk_bench, pbx, 503, "Simultaneous calls limit reached", catalog="lifecell").row
              for _ in range(3)]
    assert [(r["pbx_code"], r["pbx_category"]) for r in during] == [("503", "capacity")] * 3
    block_until(lambda: pbx.ami_connections > connections, 15, what="the AMI listener connected again")
    after = place(asterisk_bench, pbx, 409, "Not enough money", catalog="lifecell").row
    assert after["pbx_category"] == "billing"
    assert [(a.code, a.phrase) for a in ami_annotations_for(pbx, after["dstchannel"])] == [
        ("409", "Not enough money")]
    assert pbx.listener is not None and pbx.listener.client.missed_windows


def _junk_clients(port: int) -> None:
    """Clients that connect and close, send garbage, or stop halfway through a request."""
    payloads = [b"", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x00\xa5\x01\x00\n" * 3,
                b"agi_network: yes\nagi_network_script: annotate\n", b"x" * 20000 + b"\n"]
    for payload in payloads:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            if payload:
                sock.sendall(payload)


def test_fastagi_clients_that_close_or_send_garbage_cost_nothing(asterisk_bench: AsteriskBench,
                                                                  pbx: PbxCodesInProcess) -> None:
    assert pbx.agi is not None
    stats = pbx.agi.stats
    sessions, bad = stats.sessions, stats.bad_requests
    _junk_clients(pbx.agi.port)
    block_until(lambda: stats.bad_requests >= bad + 4, 5, what="the junk sessions counted as bad requests")
    assert stats.sessions == sessions  # none of them reached a handler
    call = place(asterisk_bench, pbx, 480, "Temporarily Unavailable", catalog="lifecell")
    assert (call.row["pbx_code"], call.row["pbx_category"]) == ("480", "unavailable")
    assert (call.agi_sessions, call.agi_failed_replies) == (1, 0)


def test_every_failed_cdr_of_the_run_is_annotated_and_published_once(asterisk_bench: AsteriskBench,
                                                                     pbx: PbxCodesInProcess) -> None:
    rows = [r for r in asterisk_bench.cdr_rows() if r.get("pbx_trunk")]
    started = min(t.started for t in pbx.timings)
    ours = [r for r in rows if r["uniqueid"] in {t.uniqueid for t in pbx.timings}]
    assert ours and started
    assert all(r["pbx_code"] and r["pbx_category"] for r in ours)
    failed = [r for r in ours if r["disposition"] != "ANSWERED"]

    def published() -> dict[str, int]:
        by_leg: dict[str, int] = {}
        for ann in pbx.bus_annotations:
            by_leg[ann.observation.channel or ""] = by_leg.get(ann.observation.channel or "", 0) + 1
        return by_leg
    # Calls placed while AMI was down may be missed by the listener (it logs the gap), never published twice.
    # The last calls' Getvar answers may still be on their way: wait for them, then read the totals.
    block_until(lambda: sum(1 for r in failed if published().get(r["dstchannel"])) >= len(failed) - 3, 10,
                what="the failed legs published by the AMI listener")
    by_leg = published()
    assert all(by_leg.get(r["dstchannel"], 0) <= 1 for r in failed)
