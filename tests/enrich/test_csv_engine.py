"""The file rules: a new file beside the old one, each row annotated once, resume after a stop, safe values."""
from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbx_codes.enrich import EnrichError, enrich_file, get_preset
from pbx_codes.enrich.mapping import PBX_CDR_CUSTOM_COLUMNS, PBX_COLUMNS
from pbx_codes.enrich.state import state_path
from pbx_codes.enrich.tolerant_csv import split_line

COLUMNS = ("uniqueid", "disposition", "pbx_trunk", "pbx_rawcause")
RAW = ["SIP 486 Busy Here", "SIP 409 Not enough money", "SIP 503 Simultaneous calls limit reached", "",
       "SIP 404 Not Found", "SIP 480 Temporarily Unavailable"]
DISPOSITIONS = ["BUSY", "NO ANSWER", "CONGESTION", "ANSWERED", "FAILED", "NO ANSWER"]


def write_rows(path, n: int, *, header: bool = True) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\n")
        if header:
            w.writerow(COLUMNS)
        for i in range(n):
            w.writerow([f"17954229{i}.{i}", DISPOSITIONS[i % 6], "trunk", RAW[i % 6]])


def run(source, annotator, **options):
    return enrich_file(source, get_preset("asterisk-csv-header"), annotator, progress=False, **options)


def test_output_is_a_new_file_beside_the_input_and_the_input_is_untouched(tmp_path, make_annotator):
    source = tmp_path / "cdr.csv"
    write_rows(source, 20)
    before, stat = source.read_bytes(), source.stat()
    summary = run(source, make_annotator())
    assert summary.output == str(tmp_path / "cdr.enriched.csv")
    assert source.read_bytes() == before and source.stat().st_mtime_ns == stat.st_mtime_ns
    header = next(csv.reader(io.StringIO((tmp_path / "cdr.enriched.csv").read_text())))
    assert header == [*COLUMNS, *PBX_COLUMNS]


def test_output_onto_the_input_is_refused(tmp_path, make_annotator):
    source = tmp_path / "cdr.csv"
    write_rows(source, 3)
    before = source.read_bytes()
    with pytest.raises(EnrichError, match="overwrite the input"):
        run(source, make_annotator(), output=source, force=True)
    assert source.read_bytes() == before


def test_an_unrelated_existing_output_is_not_overwritten_without_force(tmp_path, make_annotator):
    source = tmp_path / "cdr.csv"
    write_rows(source, 3)
    (tmp_path / "cdr.enriched.csv").write_text("someone else's file\n")
    with pytest.raises(EnrichError, match="--force"):
        run(source, make_annotator())
    assert (tmp_path / "cdr.enriched.csv").read_text() == "someone else's file\n"


def test_running_twice_changes_nothing_the_second_time(tmp_path, make_annotator):
    source = tmp_path / "cdr.csv"
    write_rows(source, 30)
    run(source, make_annotator())
    output = tmp_path / "cdr.enriched.csv"
    first = output.read_bytes()
    again = run(source, make_annotator())
    assert again.rows_read == 0 and output.read_bytes() == first
    # Enriching the enriched file: every row has pbx_category, so every row is copied byte for byte.
    twice = run(output, make_annotator(), output=tmp_path / "twice.csv")
    assert twice.annotated == 0 and twice.skipped_annotated == 30
    assert (tmp_path / "twice.csv").read_bytes() == first


def test_headerless_appended_rows_are_recognised_as_done(tmp_path, make_annotator):
    source = tmp_path / "Master.csv"
    write_rows(source, 12, header=False)
    preset = get_preset("asterisk-csv-header")
    enrich_file(source, preset, make_annotator(), columns=COLUMNS, progress=False)
    enriched = tmp_path / "Master.enriched.csv"
    again = enrich_file(enriched, preset, make_annotator(), columns=COLUMNS, output=tmp_path / "again.csv",
                        progress=False)
    assert again.skipped_annotated == 12 and (tmp_path / "again.csv").read_bytes() == enriched.read_bytes()


@pytest.mark.parametrize("stop_after", [1, 7, 25, 49])
def test_resume_after_a_stop_gives_the_same_file_as_one_run(tmp_path, make_annotator, stop_after):
    source = tmp_path / "cdr.csv"
    write_rows(source, 50)
    reference = tmp_path / "reference.csv"
    run(source, make_annotator(), output=reference)
    output = tmp_path / "cdr.enriched.csv"
    stopped = run(source, make_annotator(), checkpoint_rows=10, stop_after=stop_after)
    assert "stopped" in stopped.note and output.read_bytes() != reference.read_bytes()
    resumed = run(source, make_annotator(), checkpoint_rows=10)
    assert resumed.resumed_from_row == (stop_after // 10) * 10
    assert resumed.rows_read == 50 - resumed.resumed_from_row
    assert output.read_bytes() == reference.read_bytes()


def test_an_input_that_grew_resumes_with_only_the_new_rows(tmp_path, make_annotator):
    source = tmp_path / "cdr.csv"
    write_rows(source, 10)
    run(source, make_annotator())
    with source.open("a", encoding="utf-8") as f:
        f.write('"new.1","BUSY","trunk","SIP 486 Busy Here"\n')
    grown = run(source, make_annotator())
    assert grown.rows_read == 1 and grown.annotated == 1
    rows = list(csv.reader(io.StringIO((tmp_path / "cdr.enriched.csv").read_text())))
    assert len(rows) == 12 and rows[-1][0] == "new.1" and rows[-1][len(COLUMNS) + 1] == "486"


def test_a_changed_input_is_not_resumed_into_a_stale_output(tmp_path, make_annotator):
    source = tmp_path / "cdr.csv"
    write_rows(source, 10)
    run(source, make_annotator())
    write_rows(source, 4)                     # rotated: another file under the same name
    source.write_text(source.read_text().replace("17954229", "28000000"))
    with pytest.raises(EnrichError, match="not a resumable run"):
        run(source, make_annotator())
    assert run(source, make_annotator(), force=True).rows_read == 4


HOSTILE = [
    'Rufnummer "nicht" vergeben',
    "Not enough, money",
    "line one\r\nline two",
    '=HYPERLINK("x")',
    '"""',
    "Недостатньо коштів на рахунку ✓",
    "tab\there\x00nul",
]


@pytest.mark.parametrize("phrase", HOSTILE)
def test_hostile_phrases_round_trip_through_csv_and_pbx_values_stay_one_line(tmp_path, make_annotator, phrase):
    source = tmp_path / "cdr.csv"
    with source.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\n")
        w.writerow(COLUMNS)
        w.writerow(["1.1", "NO ANSWER", "trunk", f"SIP 409 {phrase}"])
        w.writerow(["1.2", "BUSY", "trunk", "SIP 486 Busy Here"])
    run(source, make_annotator())
    text = (tmp_path / "cdr.enriched.csv").read_bytes().decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == 3
    assert rows[1][:4] == ["1.1", "NO ANSWER", "trunk", f"SIP 409 {phrase}"]   # the original field, intact
    pbx = dict(zip(PBX_COLUMNS, rows[1][4:]))
    assert pbx["pbx_code"] == "409"
    for value in pbx.values():
        assert "\r" not in value and "\n" not in value and "\x00" not in value
    assert rows[2][4 + PBX_COLUMNS.index("pbx_code")] == "486"


def test_freeswitch_values_written_are_quote_free(tmp_path, make_annotator):
    columns = ("uuid", "sip_invite_failure_status", "sip_invite_failure_phrase", "sip_reason")
    source = tmp_path / "Master.csv"
    source.write_text('"u1","409","Not "enough" money","Q.850;cause=31;text="NORMAL_UNSPECIFIED""\n')
    enrich_file(source, get_preset("freeswitch-cdr-csv"), make_annotator("freeswitch", quote_free=True),
                columns=columns, progress=False)
    line = (tmp_path / "Master.enriched.csv").read_bytes().rstrip(b"\n")
    fields = split_line(line, {len(columns) + len(PBX_COLUMNS)})
    assert fields is not None
    pbx = dict(zip(PBX_COLUMNS, (f.decode() for f in fields[len(columns):])))
    assert pbx["pbx_code"] == "409" and pbx["pbx_phrase"] == "Not 'enough' money" and pbx["pbx_q850"] == "31"


def test_tolerant_reader_splits_what_mod_cdr_csv_writes():
    line = b'"a","Q.850;cause=31;text="NORMAL_UNSPECIFIED"","","""quoted at start","z"'
    assert split_line(line, {5}) == [b"a", b'Q.850;cause=31;text="NORMAL_UNSPECIFIED"', b"", b'""quoted at start',
                                     b"z"]
    assert split_line(b'"a","b","c"', {5}) is None                       # wrong count: refused, not guessed
    assert split_line(b"a,b,c,d,e", {5}) == [b"a", b"b", b"c", b"d", b"e"]  # an unquoted template


def test_strict_csv_would_misread_the_unescaped_quote():
    """Why the tolerant reader exists: the standard reader loses the field boundary."""
    line = '"a","Q.850;cause=31;text="NORMAL_UNSPECIFIED"","z"'
    assert next(csv.reader([line]))[1] != 'Q.850;cause=31;text="NORMAL_UNSPECIFIED"'


def test_rows_not_of_the_layout_are_copied_through_and_counted(tmp_path, make_annotator):
    source = tmp_path / "cdr.csv"
    write_rows(source, 2)
    with source.open("a", encoding="utf-8") as f:
        f.write('"short"\n\n"multi","BUSY","trunk","SIP 486 Busy\nHere"\n')
    summary = run(source, make_annotator())
    out = (tmp_path / "cdr.enriched.csv").read_text()
    assert '"short"\n\n' in out and summary.skipped_malformed == 2
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[-1][:4] == ["multi", "BUSY", "trunk", "SIP 486 Busy\nHere"] and rows[-1][5] == "486"


def test_coarse_rows_say_exact_false_and_name_the_implied_cause(tmp_path, make_annotator):
    source = tmp_path / "cdr.csv"
    source.write_text('"uniqueid","disposition","q850"\n"1","BUSY",""\n"2","","USER_BUSY"\n"3","FAILED",""\n'
                      '"4","",""\n')
    summary = run(source, make_annotator())
    rows = list(csv.reader(io.StringIO((tmp_path / "cdr.enriched.csv").read_text())))
    pbx = [dict(zip(PBX_COLUMNS, r[3:])) for r in rows[1:]]
    assert [(p["pbx_category"], p["pbx_q850"], p["pbx_exact"]) for p in pbx[:3]] == [
        ("busy", "17", "0"), ("busy", "17", "0"), ("unknown", "", "0")]
    assert pbx[3] == {}                                   # nothing to say: the row is left as it was
    assert summary.by_kind == {"coarse_disposition": 2, "coarse_q850": 1} and summary.skipped_no_cause == 1


def test_project_template_rows_with_a_preset_catalog_are_rewritten_in_place(tmp_path, make_annotator):
    row = {c: "" for c in PBX_CDR_CUSTOM_COLUMNS}
    row.update(disposition="NO ANSWER", pbx_rawcause="SIP 409 Not enough money", pbx_catalog="sip")
    source = tmp_path / "pbx_codes.csv"
    with source.open("w", newline="") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\n").writerow([row[c] for c in PBX_CDR_CUSTOM_COLUMNS])
    enrich_file(source, get_preset("asterisk-cdr-custom-pbx"), make_annotator(), progress=False)
    out = next(csv.reader(io.StringIO((tmp_path / "pbx_codes.enriched.csv").read_text())))
    got = dict(zip(PBX_CDR_CUSTOM_COLUMNS, out))
    assert len(out) == len(PBX_CDR_CUSTOM_COLUMNS) and got["pbx_code"] == "409" and got["pbx_category"]


def test_state_file_sits_beside_the_output(tmp_path, make_annotator):
    source = tmp_path / "cdr.csv"
    write_rows(source, 3)
    run(source, make_annotator())
    assert state_path(tmp_path / "cdr.enriched.csv").exists()
    assert sorted(os.listdir(tmp_path)) == ["cdr.csv", "cdr.enriched.csv", "cdr.enriched.csv.state.json"]


# ---- formula injection: no cell enrich writes starts a spreadsheet formula ---------------------------------

FORMULAS = ["=cmd|' /C calc'!A0", '+HYPERLINK("http://evil.example","x")', "@SUM(1+1)*cmd|' /C calc'!A0",
            "-2+3+cmd|' /C calc'!A0", "\t=1+1"]


def _pbx_cells(line: list[str]) -> dict[str, str]:
    return dict(zip(PBX_COLUMNS, line[-len(PBX_COLUMNS):]))


@pytest.mark.parametrize("formula", FORMULAS)
def test_a_formula_phrase_is_written_as_text_in_an_appended_cell(tmp_path, make_annotator, formula):
    source = tmp_path / "cdr.csv"
    with source.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\n")
        w.writerow(COLUMNS)
        w.writerow(["1.1", "NO ANSWER", "trunk", f"SIP 409 {formula}"])
    run(source, make_annotator())
    rows = list(csv.reader(io.StringIO((tmp_path / "cdr.enriched.csv").read_text(encoding="utf-8"), newline="")))
    phrase = _pbx_cells(rows[1])["pbx_phrase"]
    assert phrase == "'" + formula.strip()
    assert rows[1][:4] == ["1.1", "NO ANSWER", "trunk", f"SIP 409 {formula}"]   # the CDR's own cell: untouched


@pytest.mark.parametrize("formula", FORMULAS)
def test_a_formula_phrase_is_written_as_text_when_the_template_is_rewritten_in_place(tmp_path, make_annotator,
                                                                                     formula):
    row = {c: "" for c in PBX_CDR_CUSTOM_COLUMNS}
    row.update(disposition="NO ANSWER", pbx_rawcause=f"SIP 409 {formula}")
    source = tmp_path / "pbx_codes.csv"
    with source.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\n").writerow([row[c] for c in PBX_CDR_CUSTOM_COLUMNS])
    enrich_file(source, get_preset("asterisk-cdr-custom-pbx"), make_annotator(), progress=False)
    out = next(csv.reader(io.StringIO((tmp_path / "pbx_codes.enriched.csv").read_text(encoding="utf-8"))))
    got = dict(zip(PBX_CDR_CUSTOM_COLUMNS, out))
    assert got["pbx_phrase"] == "'" + formula.strip()
    assert not any(v and v[0] in "=+-@\t\r" for k, v in got.items() if k in PBX_COLUMNS)


@pytest.mark.parametrize("formula", [f for f in FORMULAS if '","' not in f])   # "," would end mod_cdr_csv's field
def test_a_formula_phrase_is_written_as_text_in_a_mod_cdr_csv_file(tmp_path, make_annotator, formula):
    columns = ("uuid", "sip_invite_failure_status", "sip_invite_failure_phrase", "sip_reason")
    source = tmp_path / "Master.csv"
    source.write_text(f'"u1","409","{formula}",""\n', encoding="utf-8")
    enrich_file(source, get_preset("freeswitch-cdr-csv"), make_annotator("freeswitch", quote_free=True),
                columns=columns, progress=False)
    line = (tmp_path / "Master.enriched.csv").read_bytes().rstrip(b"\n")
    fields = split_line(line, {len(columns) + len(PBX_COLUMNS)})
    pbx = dict(zip(PBX_COLUMNS, (f.decode() for f in fields[len(columns):])))
    assert pbx["pbx_phrase"] == "'" + formula.strip().replace('"', "'")


# ---- rows of the wrong width and unterminated quotes: reported by line, copied unchanged, never done ------

def _header_file(path, lines: list[str]) -> bytes:
    data = ('"uniqueid","disposition","pbx_trunk","pbx_rawcause"\n' + "".join(lines)).encode("utf-8")
    path.write_bytes(data)
    return data


GOOD = ['"1.1","BUSY","trunk","SIP 486 Busy Here"\n', '"1.2","NO ANSWER","trunk","SIP 409 Not enough money"\n',
        '"1.3","CONGESTION","trunk","SIP 503 Service Unavailable"\n', '"1.4","BUSY","trunk","SIP 486 Busy Here"\n']


@pytest.mark.parametrize("bad", [
    '"9.1","BUSY","trunk","SIP 486 Busy Here","extra"\n',                      # one column too many
    '"9.1","BUSY","trunk","SIP 486 Busy Here","","","","","","","","",""\n',   # more extra than pbx_* columns
    '"9.1","BUSY","trunk"\n',                                                  # one column short
])
def test_a_row_of_the_wrong_width_is_reported_by_line_copied_unchanged_and_never_done(tmp_path, make_annotator, bad):
    source = tmp_path / "cdr.csv"
    _header_file(source, [GOOD[0], bad, GOOD[1]])
    summary = run(source, make_annotator())
    out = (tmp_path / "cdr.enriched.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    assert out[2] == bad                                        # byte for byte, nothing appended
    assert summary.skipped_malformed == 1 and summary.malformed_lines == [3] and summary.annotated == 2
    text = io.StringIO()
    summary.write_text(text)
    assert "line 3" in text.getvalue()
    # Enriching the output again (as a later run over a copy would): the row is still malformed, not "done".
    again = enrich_file(tmp_path / "cdr.enriched.csv", get_preset("asterisk-csv-header"), make_annotator(),
                        output=tmp_path / "again.csv", progress=False)
    assert again.skipped_malformed == 1 and again.skipped_annotated == 2 and again.malformed_lines == [3]


def test_an_unterminated_quote_swallows_no_following_row(tmp_path, make_annotator):
    source = tmp_path / "cdr.csv"
    broken = '"9.1","BUSY","trunk","SIP 486 Busy Here\n'                       # the closing quote is missing
    _header_file(source, [GOOD[0], broken, *GOOD[1:]])
    summary = run(source, make_annotator())
    out = (tmp_path / "cdr.enriched.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    assert len(out) == 6 and out[2] == broken
    assert summary.rows_read == 5 and summary.annotated == 4 and summary.skipped_malformed == 1
    assert summary.malformed_lines == [3]
    assert [r[0] for r in csv.reader(io.StringIO("".join(out[3:])))] == ["1.2", "1.3", "1.4"]


def test_an_unterminated_quote_on_the_last_line_is_reported_with_its_line(tmp_path, make_annotator):
    source = tmp_path / "cdr.csv"
    data = _header_file(source, [*GOOD, '"9.9","BUSY","trunk","SIP 486 Busy'])
    summary = run(source, make_annotator())
    assert (tmp_path / "cdr.enriched.csv").read_bytes().endswith(b'"9.9","BUSY","trunk","SIP 486 Busy')
    assert summary.rows_read == 5 and summary.annotated == 4 and summary.malformed_lines == [6]
    assert data.count(b"\n") == 5


def test_two_unterminated_quotes_do_not_pair_up_over_the_rows_between(tmp_path, make_annotator):
    source = tmp_path / "cdr.csv"
    _header_file(source, [GOOD[0], '"9.1","BUSY","trunk","SIP 486 ""Busy\n', GOOD[1], GOOD[2],
                          '"9.2","BUSY","trunk","SIP 486 Busy\n', GOOD[3]])
    summary = run(source, make_annotator())
    assert summary.rows_read == 6 and summary.annotated == 4 and summary.malformed_lines == [3, 6]


def test_a_quoted_line_break_is_still_one_record_and_counts_its_lines(tmp_path, make_annotator):
    source = tmp_path / "cdr.csv"
    _header_file(source, [GOOD[0], '"9.1","BUSY","trunk","SIP 486 Busy\nHere"\n', "short\n", GOOD[1]])
    summary = run(source, make_annotator())
    assert summary.rows_read == 4 and summary.annotated == 3 and summary.malformed_lines == [5]


def test_master_rows_of_a_width_cdr_csv_never_writes_are_malformed(tmp_path, make_annotator):
    from enrich.test_quick_readers import master_line
    good = master_line(disposition=b'"BUSY"')
    wide = master_line(tail=b',"1795400000.1","","x","y"')                    # 20 fields
    looks_done = master_line(tail=b',"1795400000.4","","q850","","","busy","later","The callee is busy.","17"')
    source = tmp_path / "Master.csv"
    source.write_bytes(good + wide + looks_done + good)
    summary = enrich_file(source, get_preset("asterisk-master-csv"), make_annotator(), progress=False)
    out = (tmp_path / "Master.enriched.csv").read_bytes().splitlines(keepends=True)
    assert out[1] == wide and out[2] == looks_done                             # 25 fields but not a done row
    assert summary.malformed_lines == [2, 3] and summary.annotated == 2


def test_a_mod_cdr_csv_row_with_extra_columns_is_not_taken_for_an_annotated_one(tmp_path, make_annotator):
    columns = ("uuid", "sip_invite_failure_status", "sip_invite_failure_phrase", "sip_reason")
    source = tmp_path / "Master.csv"
    extra = '"u2","486","Busy","' + '","'.join(["x"] * len(PBX_COLUMNS)) + '"\n'
    source.write_text('"u1","409","Not enough money",""\n' + extra, encoding="utf-8")
    summary = enrich_file(source, get_preset("freeswitch-cdr-csv"), make_annotator("freeswitch", quote_free=True),
                          columns=columns, progress=False)
    assert (tmp_path / "Master.enriched.csv").read_text(encoding="utf-8").splitlines(keepends=True)[1] == extra
    assert summary.malformed_lines == [2] and summary.skipped_annotated == 0


def test_a_row_as_wide_as_an_annotated_one_but_not_annotated_is_malformed(tmp_path, make_annotator):
    source = tmp_path / "cdr.csv"
    wide = '"9.1","BUSY","trunk","SIP 486 Busy Here","","","","","","","",""\n'   # 4 + 8 fields, no category
    _header_file(source, [GOOD[0], wide])
    summary = run(source, make_annotator())
    assert (tmp_path / "cdr.enriched.csv").read_text(encoding="utf-8").splitlines(keepends=True)[2] == wide
    assert summary.malformed_lines == [3] and summary.skipped_annotated == 0 and summary.annotated == 1


BAD_LINES = ['"9.1"\n', '"9.1","BUSY","trunk"\n', '"9.1","BUSY","trunk","SIP 486 Busy Here","x"\n',
             '"9.1","BUSY","trunk","SIP 486 Busy Here",' + ",".join(['""'] * 9) + "\n",
             '"9.1","BUSY","trunk","SIP 486 Busy\n', '"9.1","BUSY","trunk","SIP 486 ""Busy\n', "\n"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=st.lists(st.sampled_from(["good", "multi"]) | st.integers(0, len(BAD_LINES) - 1), max_size=14),
       checkpoint=st.sampled_from([1, 3, 50_000]))
def test_malformed_rows_anywhere_lose_no_good_row_and_are_listed_by_line(make_annotator, layout, checkpoint):
    lines, good_ids, bad_at, line_no = [], [], [], 2
    for i, kind in enumerate(layout):
        if kind == "good":
            lines.append(f'"{i}.1","BUSY","trunk","SIP 486 Busy Here"\n')
            good_ids.append(f"{i}.1")
            line_no += 1
        elif kind == "multi":
            lines.append(f'"{i}.1","BUSY","trunk","SIP 486 Busy\nHere"\n')
            good_ids.append(f"{i}.1")
            line_no += 2
        else:
            lines.append(BAD_LINES[kind])
            bad_at.append(line_no)
            line_no += 1
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "cdr.csv"
        _header_file(source, lines)
        summary = run(source, make_annotator(), checkpoint_rows=checkpoint)
        text = (Path(folder) / "cdr.enriched.csv").read_text(encoding="utf-8")
    assert summary.malformed_lines == bad_at
    assert summary.annotated == len(good_ids) and summary.rows_read == len(layout)
    for bad in {BAD_LINES[k] for k in layout if isinstance(k, int)}:
        assert text.count(bad) >= sum(1 for k in layout if isinstance(k, int) and BAD_LINES[k] == bad)
    for record in (line for line, kind in zip(lines, layout) if not isinstance(kind, int)):
        assert record[:-1] + ',"sip","486"' in text           # the pbx_* block right after the record


def test_a_resumed_run_reports_malformed_rows_by_their_line_in_the_file(tmp_path, make_annotator):
    source = tmp_path / "cdr.csv"
    _header_file(source, [GOOD[0], '"5.1","BUSY","trunk","SIP 486 Busy\nHere"\n', GOOD[1], '"9.1","BUSY"\n',
                          GOOD[2]])
    first = run(source, make_annotator(), checkpoint_rows=1, stop_after=3)
    assert first.malformed_lines == []
    rest = run(source, make_annotator())
    assert rest.resumed_from_row == 3 and rest.malformed_lines == [6]
