"""`pbx-codes enrich`: exit 0 with a summary when it works, exit 2 with one clear line when it cannot start."""
from __future__ import annotations

import json

import pytest

from pbx_codes.cli.main import main


def write_cdr(path) -> None:
    path.write_text('"uniqueid","disposition","pbx_rawcause"\n"1","NO ANSWER","SIP 409 Not enough money"\n'
                    '"2","BUSY",""\n"3","ANSWERED","SIP 200 OK"\n', encoding="utf-8")


def test_enrich_writes_the_new_file_and_a_json_summary(tmp_path, capsys):
    source = tmp_path / "cdr.csv"
    write_cdr(source)
    summary = tmp_path / "summary.json"
    code = main(["enrich", str(source), "--preset", "asterisk-csv-header", "--summary", str(summary),
                 "--lang", "uk"])
    assert code == 0
    data = json.loads(summary.read_text())
    assert data["rows_read"] == 3 and data["annotated"] == 3 and data["skipped"] == 0
    assert data["by_category"] == {"busy": 1, "ok": 1, "request_error": 1}
    assert "rows read 3" in capsys.readouterr().err
    assert (tmp_path / "cdr.enriched.csv").exists()


def test_map_override_reads_another_column(tmp_path):
    source = tmp_path / "cdr.csv"
    source.write_text('"id","why"\n"1","SIP 486 Busy Here"\n', encoding="utf-8")
    assert main(["enrich", str(source), "--preset", "asterisk-csv-header", "--map", "rawcause=why"]) == 0
    assert '"486"' in (tmp_path / "cdr.enriched.csv").read_text()


@pytest.mark.parametrize("argv_tail, message", [
    (["--preset", "asterisk-csv-header", "--map", "nonsense=x"], "--map"),
    (["--preset", "asterisk-csv-header", "--columns", "a,a"], "--columns"),
    (["--preset", "asterisk-pgsql"], "postgresql://"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, argv_tail, message):
    source = tmp_path / "cdr.csv"
    write_cdr(source)
    assert main(["enrich", str(source), *argv_tail]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("pbx-codes:")


def test_unknown_or_missing_preset_is_a_usage_error(tmp_path, capsys):
    source = tmp_path / "cdr.csv"
    write_cdr(source)
    for argv in (["enrich", str(source)], ["enrich", str(source), "--preset", "nope"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("preset", ["asterisk-master-csv", "freeswitch-json", "asterisk-sqlite3-custom"])
def test_missing_input_exits_2(tmp_path, capsys, preset):
    assert main(["enrich", str(tmp_path / "absent.csv"), "--preset", preset]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot be read" in err and len(err.splitlines()) == 1


def test_unreadable_layouts_exit_2(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["enrich", str(empty), "--preset", "asterisk-csv-header"]) == 2
    nodb = tmp_path / "cdr.db"
    nodb.write_text("not a database at all, just text" * 10)
    assert main(["enrich", str(nodb), "--preset", "asterisk-sqlite3-custom"]) == 2
    other = tmp_path / "other.csv"
    other.write_text('"a","b"\n"1","2"\n')
    assert main(["enrich", str(other), "--preset", "asterisk-csv-header"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("pbx-codes: ") for line in lines)


def test_an_output_in_the_way_exits_2_and_force_overwrites_it(tmp_path, capsys):
    source = tmp_path / "cdr.csv"
    write_cdr(source)
    (tmp_path / "cdr.enriched.csv").write_text("keep me\n")
    assert main(["enrich", str(source), "--preset", "asterisk-csv-header"]) == 2
    assert (tmp_path / "cdr.enriched.csv").read_text() == "keep me\n"
    assert main(["enrich", str(source), "--preset", "asterisk-csv-header", "--force"]) == 0
    assert "keep me" not in (tmp_path / "cdr.enriched.csv").read_text()
