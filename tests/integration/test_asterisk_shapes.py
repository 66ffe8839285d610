"""Every call shape on the real Asterisk 22: the CDR (FastAGI path) and the store (AMI path) give one answer.

Each test places one real call of a shape (see `pbx_codes.testbed.shapes`) through the bench, with the pbx-codes
FastAGI server, AMI listener and a SQLite store running in this process as ``serve`` wires them, and checks:
the annotated CDR record says what the shape is; the store's row (published by the AMI listener, or by the
FastAGI path for a call AMI never saw) says the same; and Asterisk logged no WARNING while pbx-codes handled it.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from integration.asterisk_calls import CATALOG_DIR
from pbx_codes.enrich.mapping import PBX_CDR_CUSTOM_COLUMNS, PBX_COLUMNS, PBX_OUTCOME_COLUMNS
from pbx_codes.quality.classes import load_table
from pbx_codes.quality.legs import leg_from_row
from pbx_codes.quality.measures import per_trunk
from pbx_codes.testbed import shapes
from pbx_codes.testbed.asterisk import AsteriskBench
from pbx_codes.testbed.inprocess import PbxCodesInProcess
from support.waiting import block_until

SECRET_ENV = "PBX_CODES_IT_SHAPES_AMI_SECRET"

#: What the annotated CDR record says for each shape: dial status, code, category, retry, outcome, exact,
#: who hung up, the Q.850 cause observed (or naming the shape). The README's table shows the same.
EXPECTED: dict[str, tuple[str, ...]] = {
    "unreachable": ("CHANUNAVAIL", "408", "network", "failover", "local_response", "0", "local", "18"),
    "silent": ("NOANSWER", "408", "network", "failover", "local_response", "0", "local", "18"),
    "qualify-down": ("CHANUNAVAIL", "", "network", "failover", "unreachable", "0", "local", "3"),
    "ring-timeout": ("NOANSWER", "", "no_answer", "later", "ring_timeout", "0", "local", "19"),
    "caller-cancel": ("CANCEL", "487", "cancelled", "no", "caller_cancel", "1", "caller", "127"),
    "answered-carrier-bye": ("ANSWER", "200", "ok", "no", "answered", "1", "carrier", "16"),
    "answered-caller-bye": ("ANSWER", "200", "ok", "no", "answered", "1", "caller", "16"),
}
CDR_COLUMNS = ("pbx_dialstatus", "pbx_code", "pbx_category", "pbx_retry", "pbx_outcome", "pbx_exact",
               "pbx_hangup_by", "pbx_q850_observed")


@pytest.fixture(scope="module")
def pbx(asterisk_bench: AsteriskBench, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PbxCodesInProcess]:
    store = tmp_path_factory.mktemp("shapes-store") / "annotations.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(SECRET_ENV, asterisk_bench.ami_secret)
        with PbxCodesInProcess(asterisk_bench, language="en", catalog_dirs=[str(CATALOG_DIR)],
                               bindings={"trunk": asterisk_bench.trunk_catalog}, ami=True,
                               ami_secret_env=SECRET_ENV, store_url=f"sqlite:///{store}") as running:
            yield running


@dataclass
class Placed:
    rows: list[dict[str, Any]]
    store: list[dict[str, Any]]
    warnings: list[str]

    @property
    def last(self) -> dict[str, Any]:
        return self.rows[-1]


def _log_size(bench: AsteriskBench) -> int:
    return bench.log_path.stat().st_size if bench.log_path.exists() else 0


def _warnings_since(bench: AsteriskBench, offset: int) -> list[str]:
    with bench.log_path.open("rb") as fh:
        fh.seek(offset)
        text = fh.read().decode("utf-8", "replace")
    return [line for line in text.splitlines() if " WARNING[" in line]


def place(bench: AsteriskBench, pbx: PbxCodesInProcess, attempts: int, call: Any) -> Placed:
    """Place one call, wait until its CDR records exist and every attempt reached the store; then read the log."""
    offset = _log_size(bench)
    rows = bench.wait_cdr_rows(call(bench))
    assert rows, "Asterisk wrote no CDR record"
    linkedid = rows[0]["linkedid"]
    stored: list[dict[str, Any]] = []

    def settled() -> bool:
        stored[:] = pbx.store_rows(linkedid)
        return len(stored) >= attempts
    block_until(settled, 10, what=f"{attempts} attempts of {linkedid} stored")
    return Placed(rows, stored, _warnings_since(bench, offset))


def _store_view(row: dict[str, Any]) -> tuple[str, ...]:
    """A store row in the CDR's words, to compare the two paths."""
    def text(value: Any) -> str:
        return "" if value is None else str(value)
    return (text(row["dial_status"]), text(row["code"]), row["category"], row["retry"], text(row["outcome"]),
            "1" if row["exact"] else "0", row["hangup_by"], text(row["observed_q850"]))


@pytest.mark.parametrize("shape", list(EXPECTED))
def test_each_call_shape_gets_its_answer_in_the_cdr_and_the_same_in_the_store_with_no_warning(
        asterisk_bench: AsteriskBench, pbx: PbxCodesInProcess, shape: str) -> None:
    call = place(asterisk_bench, pbx, 1, lambda bench: shapes.place_shape(bench, shape))
    (row,) = call.rows
    assert tuple(row[name] for name in CDR_COLUMNS) == EXPECTED[shape]
    assert (row["pbx_attempt"], row["pbx_trunk"]) == ("1", shapes.SHAPES[shape].trunk)
    (csv_row,) = [r for r in asterisk_bench.cdr_csv_rows() if r["linkedid"] == row["linkedid"]]
    assert {n: csv_row[n] for n in PBX_OUTCOME_COLUMNS} == {n: row[n] for n in PBX_OUTCOME_COLUMNS}  # CSV = JSON
    (stored,) = call.store
    expected_view = EXPECTED[shape]
    if shape in ("unreachable",):
        # AMI's DialEnd says NOANSWER where the dialplan's DIALSTATUS says CHANUNAVAIL: the one difference.
        expected_view = ("NOANSWER", *expected_view[1:])
    assert _store_view(stored) == expected_view
    assert stored["attempt"] == 1 and stored["trunk"] == shapes.SHAPES[shape].trunk
    assert call.warnings == []
    if not shape.startswith("answered"):
        assert "ok" not in (row["pbx_category"], stored["category"])  # an unanswered call is never ok


def test_a_call_that_created_no_leg_reaches_the_store_through_the_fastagi_path(
        asterisk_bench: AsteriskBench, pbx: PbxCodesInProcess) -> None:
    call = place(asterisk_bench, pbx, 1, lambda bench: shapes.place_shape(bench, "qualify-down"))
    assert call.last["dstchannel"] == ""  # no B channel: the AMI listener saw no DialBegin
    (stored,) = call.store
    assert stored["channel"] is None and stored["uniqueid"] is None and stored["outcome"] == "unreachable"
    # a seizure of the trunk the route dialled that sent no INVITE: ASR and NER fall, no RFC 6076 ratio counts it
    (quality,) = per_trunk([leg_from_row(stored)], load_table())
    assert (quality["trunk"], quality["seizures"], quality["invites"], quality["asr"], quality["ner"]) == (
        shapes.SHAPES["qualify-down"].trunk, 1, 0, 0.0, 0.0)
    assert (quality["ser"], quality["seer"], quality["isa"]) == (None, None, None)


def test_shipped_failover_example_fails_over_on_503_and_lists_both_attempts(
        asterisk_bench: AsteriskBench, pbx: PbxCodesInProcess) -> None:
    chain = [("503", "Service Unavailable"), ("486", "Busy Here")]
    call = place(asterisk_bench, pbx, 2, lambda bench: shapes.place_failover(bench, chain))
    last = call.last
    assert [r["dstchannel"].rsplit("-", 1)[0] for r in call.rows if r["dstchannel"]] == [
        "PJSIP/trunk", "PJSIP/backup"]  # carrier 2 was dialled: the example failed over
    assert (last["pbx_trunk"], last["pbx_code"], last["pbx_phrase"], last["pbx_attempt"]) == (
        "backup", "486", "Busy Here", "2")
    assert last["pbx_attempts"] == ("1:trunk:503:capacity:failover:carrier_final;"
                                    "2:backup:486:busy:later:carrier_final")
    assert [(r["attempt"], r["trunk"], r["code"], r["retry"]) for r in call.store] == [
        (1, "trunk", "503", "failover"), (2, "backup", "486", "later")]
    assert len({r["linkedid"] for r in call.store}) == 1
    assert call.warnings == []


def test_failover_chain_of_three_carriers_ends_answered_with_every_attempt_in_order(
        asterisk_bench: AsteriskBench, pbx: PbxCodesInProcess) -> None:
    chain = [("503", "Simultaneous calls limit reached"), ("408", "Request Timeout"), ("200", "OK")]
    call = place(asterisk_bench, pbx, 3, lambda bench: shapes.place_failover(bench, chain))
    last = call.last
    assert (last["disposition"], last["pbx_code"], last["pbx_category"], last["pbx_attempt"]) == (
        "ANSWERED", "200", "ok", "3")
    assert last["pbx_attempts"] == ("1:trunk:503:capacity:failover:carrier_final;"
                                    "2:backup:408:network:failover:carrier_final;3:backup2:200:ok:no:answered")
    assert [(r["attempt"], r["code"], r["outcome"]) for r in call.store] == [
        (1, "503", "carrier_final"), (2, "408", "carrier_final"), (3, "200", "answered")]
    assert call.warnings == []


def test_enrich_and_backfill_read_the_real_csv_records_in_the_first_layout_and_the_current_one(
        asterisk_bench: AsteriskBench, pbx: PbxCodesInProcess, tmp_path: Path) -> None:
    """A pbx_codes.csv written before and after the mapping gained the outcome fields: the real records of a call,
    each as the first layout wrote it (its first fields) and as Asterisk writes it now, the annotation's fields
    emptied as when the FastAGI server was down. enrich annotates every row; backfill reads every row, both
    layouts naming the leg the same."""
    from pbx_codes.backfill.readers import read_observations
    from pbx_codes.cli.main import main
    from pbx_codes.testbed.asterisk import CDR_CSV
    from pbx_codes.testbed.sipp import run_call

    linkedid = place(asterisk_bench, pbx, 1, lambda bench: run_call(bench, code=486, phrase="Busy Here")).last[
        "linkedid"]
    code = PBX_CDR_CUSTOM_COLUMNS.index("pbx_code")
    # The session's bench also holds other tests' records, some with a carrier's invalid UTF-8 on purpose.
    with (asterisk_bench.rootfs / CDR_CSV).open(encoding="utf-8", errors="surrogateescape", newline="") as fh:
        records = [r for r in csv.reader(fh) if r[PBX_CDR_CUSTOM_COLUMNS.index("linkedid")] == linkedid and r[code]]
    assert [(len(r), r[code]) for r in records] == [(len(PBX_CDR_CUSTOM_COLUMNS) + len(PBX_OUTCOME_COLUMNS), "486")]
    verdict = [PBX_CDR_CUSTOM_COLUMNS.index(c) for c in PBX_COLUMNS if c != "pbx_catalog"]
    unannotated = [[("" if i in verdict or i >= len(PBX_CDR_CUSTOM_COLUMNS) else v) for i, v in enumerate(r)]
                   for r in records]
    mixed = [r[:len(PBX_CDR_CUSTOM_COLUMNS)] for r in unannotated] + unannotated
    source = tmp_path / "pbx_codes.csv"
    with source.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(mixed)
    summary_path = tmp_path / "summary.json"
    assert main(["enrich", str(source), "--preset", "asterisk-cdr-custom-pbx", "--catalog-dir", str(CATALOG_DIR),
                 "--summary", str(summary_path), "--no-progress"]) == 0
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    assert (summary["annotated"], summary["malformed_lines"]) == (2, [])
    with (tmp_path / "pbx_codes.enriched.csv").open(encoding="utf-8", newline="") as fh:
        enriched = list(csv.reader(fh))
    assert [r[code] for r in enriched] == ["486", "486"]
    assert [len(r) for r in enriched] == [len(r) for r in mixed]
    observations, stats = read_observations("asterisk", [source])
    assert (stats.records, stats.malformed, stats.skipped) == (2, 0, 0)
    legs = [(o.call_id, o.channel, o.sip_code, o.phrase) for o in observations]
    assert legs[0] == legs[1] == (linkedid, records[0][PBX_CDR_CUSTOM_COLUMNS.index("dstchannel")], "486",
                                  "Busy Here")


def test_each_dialed_leg_tells_the_listener_its_own_status_line_through_the_shipped_dialplan(
        asterisk_bench: AsteriskBench, pbx: PbxCodesInProcess) -> None:
    # The leg hangup handler's UserEvent reaches the AMI listener and is read (the dialplan and the observer agree
    # on its name and encoding); from then on the listener asks no Getvar early. The CDR's raw cause is the same
    # status line, read by the caller's hangup handler from what the leg handed over.
    call = place(asterisk_bench, pbx, 1, lambda bench: shapes.place_shape(bench, "caller-cancel"))
    assert pbx.listener is not None and pbx.listener.observer.legs_tell
    assert call.last["pbx_rawcause"].startswith("SIP 1")  # the last provisional: the caller cancelled while ringing
    assert call.warnings == []
