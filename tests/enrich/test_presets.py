"""Each preset against rows shaped exactly like the recorded Asterisk and FreeSWITCH CDRs."""
from __future__ import annotations

import csv
import json
import sqlite3

import pytest

from enrich.cdr_inputs import (
    FS_RECORDED_COLUMNS,
    LEGACY_COLUMNS,
    asterisk_scenarios,
    asterisk_sections,
    fs_rows,
    fs_summaries,
    mod_cdr_csv_line,
)
from pbx_codes.enrich import enrich_file, get_preset
from pbx_codes.enrich.mapping import (
    FS_CDR_CSV_COLUMNS,
    MASTER_CSV_COLUMNS,
    PBX_CDR_CUSTOM_COLUMNS,
    PBX_CDR_CUSTOM_LAYOUTS,
    PBX_COLUMNS,
    PBX_OUTCOME_COLUMNS,
)
from pbx_codes.enrich.tables import enrich_sqlite

SCENARIOS = asterisk_scenarios()


def read_csv(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def pbx_of(row: list[str]) -> dict[str, str]:
    return dict(zip(PBX_COLUMNS, row[-len(PBX_COLUMNS):]))


def legacy_rows(scenario: str) -> list[dict[str, str]]:
    text = asterisk_sections(scenario)["Legacy.csv"]
    return [dict(zip(LEGACY_COLUMNS, r)) for r in csv.reader(text.splitlines())]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_recorded_cdr_custom_file_read_as_is_gets_the_carriers_code_and_phrase(tmp_path, make_annotator, scenario):
    source = tmp_path / "Legacy.csv"
    source.write_text(asterisk_sections(scenario)["Legacy.csv"], encoding="utf-8")
    enrich_file(source, get_preset("asterisk-cdr-custom-pbx"), make_annotator(), columns=LEGACY_COLUMNS,
                progress=False)
    out = read_csv(tmp_path / "Legacy.enriched.csv")
    originals = read_csv(source)
    assert [r[: len(LEGACY_COLUMNS)] for r in out] == originals
    for original, row in zip(originals, out):
        fields, pbx = dict(zip(LEGACY_COLUMNS, original)), pbx_of(row)
        if fields["sip_code"] and fields["sip_code"] >= "300":
            assert pbx["pbx_code"] == fields["sip_code"] and pbx["pbx_exact"] == "1"
            expected_phrase = fields["sip_reason"].split(" ", 2)[2]
            assert pbx["pbx_phrase"] == expected_phrase
        elif fields["disposition"]:
            assert pbx["pbx_exact"] == "0" and pbx["pbx_category"]


def test_project_cdr_custom_template_fills_its_empty_pbx_columns_from_pbx_rawcause(tmp_path, make_annotator):
    rows = []
    for scenario in SCENARIOS:
        for r in legacy_rows(scenario):
            values = {c: "" for c in PBX_CDR_CUSTOM_COLUMNS}
            values.update({k: r[k] for k in ("uniqueid", "linkedid", "channel", "dstchannel", "dst", "lastapp",
                                             "lastdata", "start", "end", "disposition", "userfield", "sequence")})
            values["pbx_rawcause"] = r["sip_reason"]
            values["pbx_trunk"] = "trunk" if r["sip_reason"] else ""
            rows.append([values[c] for c in PBX_CDR_CUSTOM_COLUMNS])
    source = tmp_path / "pbx_codes.csv"
    with source.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    summary = enrich_file(source, get_preset("asterisk-cdr-custom-pbx"), make_annotator(), progress=False)
    out = read_csv(tmp_path / "pbx_codes.enriched.csv")
    assert len(out) == len(rows) == summary.rows_read
    assert all(len(r) == len(PBX_CDR_CUSTOM_COLUMNS) for r in out)      # filled in place, nothing appended
    money = [pbx_of(r) for r in out if r[PBX_CDR_CUSTOM_COLUMNS.index("pbx_rawcause")] == "SIP 409 Not enough money"]
    if "money409" in SCENARIOS and asterisk_scenarios():
        assert money and all(m["pbx_code"] == "409" and m["pbx_phrase"] == "Not enough money" for m in money)
    cancelled = [pbx_of(r) for r in out if r[PBX_CDR_CUSTOM_COLUMNS.index("pbx_rawcause")] == "SIP 180 Ringing"]
    assert all(c["pbx_code"] != "180" for c in cancelled)   # a provisional explains nothing: read coarsely


def test_master_csv_with_disposition_only_is_annotated_coarsely(tmp_path, make_annotator):
    lines = []
    for scenario in SCENARIOS:
        for r in legacy_rows(scenario):
            master = {c: "" for c in MASTER_CSV_COLUMNS}
            master.update(channel=r["channel"], dstchannel=r["dstchannel"], dst=r["dst"], lastapp=r["lastapp"],
                          lastdata=r["lastdata"], start=r["start"], end=r["end"], disposition=r["disposition"],
                          clid='"Caller" <1000>', amaflags="DOCUMENTATION", uniqueid=r["uniqueid"])
            lines.append([master[c] for c in MASTER_CSV_COLUMNS])
    source = tmp_path / "Master.csv"
    with source.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(lines)
    enrich_file(source, get_preset("asterisk-master-csv"), make_annotator(), progress=False)
    out = read_csv(tmp_path / "Master.enriched.csv")
    assert [r[: len(MASTER_CSV_COLUMNS)] for r in out] == lines
    for row in out:
        pbx = pbx_of(row)
        assert pbx["pbx_exact"] == "0" and pbx["pbx_code"] == ""
        disposition = row[MASTER_CSV_COLUMNS.index("disposition")]
        expected = {"NO ANSWER": ("no_answer", "19"), "BUSY": ("busy", "17"), "ANSWERED": ("ok", "16"),
                    "CONGESTION": ("capacity", "34"), "FAILED": ("unknown", "")}[disposition]
        assert (pbx["pbx_category"], pbx["pbx_q850"]) == expected


def test_asterisk_json_lines_from_the_recording_get_flat_pbx_fields(tmp_path, make_annotator):
    text = "".join(asterisk_sections(s)["bench.json"] for s in SCENARIOS)
    source = tmp_path / "bench.json"
    source.write_text(text, encoding="utf-8")
    enrich_file(source, get_preset("asterisk-json"), make_annotator(), progress=False)
    before = [json.loads(line) for line in text.splitlines()]
    after = [json.loads(line) for line in (tmp_path / "bench.enriched.json").read_text().splitlines()]
    assert len(before) == len(after)
    for b, a in zip(before, after):
        assert {k: a[k] for k in b} == b
        if b["sip_code"] >= "300":
            assert a["pbx_code"] == b["sip_code"] and a["pbx_exact"] == "1"


FS_FILES = fs_summaries()[:30]


def test_freeswitch_mod_cdr_csv_rows_as_recorded_with_unescaped_quotes(tmp_path, make_annotator):
    lines, expected = [], []
    for summary in FS_FILES:
        for row in fs_rows(summary):
            lines.append(mod_cdr_csv_line([row[c] for c in FS_RECORDED_COLUMNS]))
            expected.append(row)
    assert any('text="' in line for line in lines)        # the case strict readers get wrong is in the input
    source = tmp_path / "Master.csv"
    source.write_bytes("".join(lines).encode())
    preset = get_preset("freeswitch-cdr-csv")
    summary = enrich_file(source, preset, make_annotator("freeswitch", quote_free=True),
                          columns=FS_RECORDED_COLUMNS, progress=False)
    assert summary.skipped_malformed == 0
    out = (tmp_path / "Master.enriched.csv").read_bytes().decode().splitlines(keepends=True)
    assert len(out) == len(lines)
    for line, row, original in zip(out, expected, lines):
        assert line.startswith(original[:-1])               # the original bytes are kept, values appended
        fields = line[1:-2].split('","')
        pbx = dict(zip(PBX_COLUMNS, fields[len(FS_RECORDED_COLUMNS):]))
        code = (row["last_bridge_proto_specific_hangup_cause"].removeprefix("sip:")
                or row["sip_invite_failure_status"] or row["sip_term_status"])
        if code and code >= "300":
            assert pbx["pbx_code"] == code
        if row["sip_reason"].startswith("Q.850;cause="):
            assert pbx["pbx_q850"] != ""
        assert pbx["pbx_exact"] in ("true", "false")


def test_freeswitch_project_template_fills_the_pbx_columns_and_keeps_the_dialect(tmp_path, make_annotator):
    row = {c: "" for c in FS_CDR_CSV_COLUMNS}
    row.update(uuid="c09b4653", call_uuid="965ab554", destination_number="409", hangup_cause="NORMAL_UNSPECIFIED",
               hangup_cause_q850="31", sip_term_status="409", sip_gateway_name="gw")
    source = tmp_path / "Master.csv"
    source.write_text(mod_cdr_csv_line([row[c] for c in FS_CDR_CSV_COLUMNS]))
    enrich_file(source, get_preset("freeswitch-cdr-csv"), make_annotator("freeswitch", quote_free=True),
                progress=False)
    line = (tmp_path / "Master.enriched.csv").read_text()
    fields = line[1:-2].split('","')
    assert len(fields) == len(FS_CDR_CSV_COLUMNS)
    got = dict(zip(FS_CDR_CSV_COLUMNS, fields))
    assert got["pbx_code"] == "409" and got["pbx_exact"] == "true" and got["pbx_hangup_by"] == ""


@pytest.mark.parametrize("shape", ["lines", "single", "folder"])
def test_freeswitch_json_cdr_documents_get_pbx_variables(tmp_path, make_annotator, shape):
    docs = [{"core-uuid": "x", "channel_data": {"state": "CS_REPORTING"}, "variables": dict(row)}
            for summary in FS_FILES[:6] for row in fs_rows(summary)]
    preset = get_preset("freeswitch-json")
    annotator = make_annotator("freeswitch")
    if shape == "lines":
        source = tmp_path / "cdr.json"
        source.write_text("".join(json.dumps(d) + "\n" for d in docs))
        enrich_file(source, preset, annotator, progress=False)
        out = [json.loads(x) for x in (tmp_path / "cdr.enriched.json").read_text().splitlines()]
    elif shape == "single":
        source = tmp_path / "a_1.cdr.json"
        source.write_text(json.dumps(docs[0], indent=2))
        enrich_file(source, preset, annotator, progress=False)
        out = [json.loads((tmp_path / "a_1.cdr.enriched.json").read_text())]
        docs = docs[:1]
    else:
        folder = tmp_path / "json_cdr"
        folder.mkdir()
        for n, d in enumerate(docs):
            (folder / f"{n:03d}.cdr.json").write_text(json.dumps(d))
        enrich_file(folder, preset, annotator, progress=False)
        out = [json.loads(p.read_text()) for p in sorted((tmp_path / "json_cdr.enriched").iterdir())]
    assert len(out) == len(docs)
    for before, after in zip(docs, out):
        assert after["channel_data"] == before["channel_data"]
        v, b = after["variables"], before["variables"]
        assert {k: v[k] for k in b} == b and "pbx_category" not in after
        code = (b["last_bridge_proto_specific_hangup_cause"].removeprefix("sip:") or b["sip_invite_failure_status"]
                or b["sip_term_status"])
        if code and code >= "300":
            assert v["pbx_code"] == code and v["pbx_category"]


def _sqlite_from_recording(path, scenarios) -> int:
    rows = []
    for s in scenarios:
        rows += [json.loads(x) for x in asterisk_sections(s)["master.db"].splitlines() if x.strip()]
    columns = list(rows[0])
    con = sqlite3.connect(path)
    con.execute(f"CREATE TABLE cdr (AcctId INTEGER PRIMARY KEY, {', '.join(c + ' TEXT' for c in columns[1:])})")
    con.executemany(f"INSERT INTO cdr VALUES ({', '.join('?' * len(columns))})",
                    [[r[c] for c in columns] for r in rows])
    con.commit()
    con.close()
    return len(rows)


def test_sqlite3_custom_table_is_annotated_in_place_once(tmp_path, make_annotator):
    db = tmp_path / "master.db"
    n = _sqlite_from_recording(db, SCENARIOS)
    preset = get_preset("asterisk-sqlite3-custom")
    first = enrich_sqlite(str(db), preset, make_annotator(), batch_rows=3, progress=False)
    assert first.rows_read == n and first.annotated + first.skipped_no_cause == n
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute("SELECT * FROM cdr ORDER BY AcctId")]
    con.close()
    assert all(c in rows[0] for c in PBX_COLUMNS)
    for r in rows:
        if r["sip_code"] and r["sip_code"] >= "300":
            assert r["pbx_code"] == r["sip_code"] and r["pbx_exact"] == "1"
    snapshot = rows
    second = enrich_sqlite(str(db), preset, make_annotator(), progress=False)
    assert second.rows_read == 0 and second.annotated == 0
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    assert [dict(r) for r in con.execute("SELECT * FROM cdr ORDER BY AcctId")] == snapshot
    con.close()


def test_sqlite_run_stopped_midway_finishes_the_rest_on_the_next_run(tmp_path, make_annotator):
    db = tmp_path / "master.db"
    n = _sqlite_from_recording(db, SCENARIOS)
    preset = get_preset("asterisk-sqlite3-custom")
    stopped = enrich_sqlite(str(db), preset, make_annotator(), batch_rows=2, stop_after=3, progress=False)
    assert stopped.rows_read == 3
    rest = enrich_sqlite(str(db), preset, make_annotator(), batch_rows=2, progress=False)
    assert rest.rows_read == n - stopped.annotated       # the annotated ones are not read again
    con = sqlite3.connect(db)
    pending = con.execute("SELECT count(*) FROM cdr WHERE pbx_category IS NULL OR pbx_category = ''").fetchone()[0]
    con.close()
    assert pending == rest.skipped_no_cause              # only rows with nothing to say stay pending


def test_sqlite_table_that_cannot_take_the_pbx_columns_is_a_clear_error_not_a_crash(tmp_path, make_annotator):
    from pbx_codes.enrich.files import EnrichError

    db = tmp_path / "cdr.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE real_cdr (uniqueid TEXT, disposition TEXT, pbx_rawcause TEXT)")
    con.execute("CREATE VIEW cdr AS SELECT uniqueid, disposition, pbx_rawcause FROM real_cdr")
    con.commit()
    con.close()
    with pytest.raises(EnrichError, match="view"):
        enrich_sqlite(str(db), get_preset("asterisk-sqlite3-custom"), make_annotator(), table="cdr", progress=False)


def _cdr_custom_row(names: tuple[str, ...], **values: str) -> list[str]:
    row = {c: "" for c in names}
    row.update(start="2026-11-23 09:00:00", end="2026-11-23 09:00:01", uniqueid="1795426000.1",
               linkedid="1795426000.0", dstchannel="PJSIP/trunk-00000001", sequence="3", **values)
    return [row[c] for c in names]


def test_cdr_custom_file_with_rows_before_and_after_the_outcome_fields_is_annotated_in_place(tmp_path,
                                                                                         make_annotator):
    """Asterisk goes on appending to pbx_codes.csv when the mapping gains pbx_hangup_by ... pbx_attempts: one file
    holds both layouts, and every row of either is read by its own field count, none is malformed."""
    old, new = PBX_CDR_CUSTOM_COLUMNS, PBX_CDR_CUSTOM_LAYOUTS[len(PBX_CDR_CUSTOM_COLUMNS) + 5]
    assert new[:len(old)] == old and new[len(old):] == PBX_OUTCOME_COLUMNS
    rows = [
        _cdr_custom_row(old, disposition="BUSY", pbx_rawcause="SIP 486 Busy Here"),          # empty pbx_* tail
        # FastAGI down: the dialplan's catalog is there, the annotation's columns (old and new) are empty
        _cdr_custom_row(new, disposition="FAILED", pbx_rawcause="SIP 409 Not enough money", pbx_catalog="lifecell"),
        _cdr_custom_row(new, disposition="BUSY", pbx_rawcause="SIP 486 Busy Here"),          # empty tail, new layout
        _cdr_custom_row(new, disposition="BUSY", pbx_rawcause="SIP 486 Busy Here", pbx_catalog="sip",
                        pbx_code="486", pbx_category="busy", pbx_retry="later", pbx_exact="1",
                        pbx_hangup_by="carrier", pbx_outcome="carrier_final", pbx_q850_observed="17",
                        pbx_attempt="1", pbx_attempts="1:trunk:486:busy:later:carrier_final"),   # annotated live
    ]
    source = tmp_path / "pbx_codes.csv"
    with source.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    summary = enrich_file(source, get_preset("asterisk-cdr-custom-pbx"), make_annotator(), progress=False)
    assert (summary.skipped_malformed, summary.skipped_annotated) == (0, 1)
    out = read_csv(tmp_path / "pbx_codes.enriched.csv")
    assert [len(r) for r in out] == [len(r) for r in rows]                 # filled in place, nothing appended
    got = [dict(zip(new, r)) for r in out]
    assert [(g["pbx_code"], g["pbx_category"], g["pbx_catalog"]) for g in got] == [
        ("486", "busy", "sip"), ("409", "billing", "lifecell"), ("486", "busy", "sip"), ("486", "busy", "sip")]
    assert [[g.get(c, "") for c in PBX_OUTCOME_COLUMNS] for g in got[1:3]] == [[""] * 5] * 2  # left as they were
    assert out[3] == rows[3]
    for original, row in zip(rows, out):  # the CDR's own cells are untouched in either layout
        assert row[:len(old) - len(PBX_COLUMNS)] == original[:len(old) - len(PBX_COLUMNS)]


def test_shipped_cdr_custom_csv_mapping_is_the_newest_layout_enrich_and_backfill_read() -> None:
    from pbx_codes.testbed.cdr import csv_field_names as _csv_field_names

    names = tuple(_csv_field_names())
    assert PBX_CDR_CUSTOM_LAYOUTS[len(names)] == names
    assert len(names) == max(PBX_CDR_CUSTOM_LAYOUTS)
    assert get_preset("asterisk-cdr-custom-pbx").layouts == dict(PBX_CDR_CUSTOM_LAYOUTS)
