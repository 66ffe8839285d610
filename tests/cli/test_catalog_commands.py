"""`pbx-codes lookup|catalogs|export|validate`: output, JSON shape and the exit codes 0, 1 and 2."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pbx_codes.cli.main import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_lookup_json_has_the_promised_keys(capsys) -> None:
    code, out, _ = run(capsys, "lookup", "--catalog", "lifecell", "--json", "503", "Simultaneous calls limit reached")
    data = json.loads(out)
    assert code == 0
    assert {"catalog", "code", "matched", "exact", "category", "retry", "sip", "q850", "texts"} <= set(data)
    assert data["catalog"] == "lifecell" and data["category"] == "capacity" and data["retry"] == "failover"
    assert data["texts"]["uk"] == "перевищено ліміт одночасних викликів."


def test_lookup_by_class_exits_zero_and_says_so(capsys) -> None:
    code, out, _ = run(capsys, "lookup", "--catalog", "mango", "--lang", "ru", "2219")
    assert code == 0
    assert "221x" in out and "Доступ ограничен периодом использования" in out


def test_lookup_with_no_match_exits_one(capsys) -> None:
    code, out, _ = run(capsys, "lookup", "--catalog", "voipnow", "--json", "999")
    assert code == 1 and json.loads(out)["category"] == "unknown"


def test_bad_arguments_exit_two_with_an_error_on_stderr(capsys) -> None:
    code, out, err = run(capsys, "lookup", "--catalog", "nope", "486")
    assert code == 2 and out == "" and "unknown catalog 'nope'" in err
    with pytest.raises(SystemExit) as info:
        main(["lookup", "--lang", "de", "486"])
    assert info.value.code == 2


def test_catalogs_lists_every_catalog_with_its_count(capsys, catalogs) -> None:
    code, out, _ = run(capsys, "catalogs", "--json")
    rows = {r["id"]: r["entries"] for r in json.loads(out)}
    assert code == 0 and rows == {c.id: len(c.entries) for c in catalogs}


def test_export_json_and_csv_carry_every_entry(capsys, catalogs) -> None:
    code, out, _ = run(capsys, "export", "voipnow", "--format", "json")
    data = json.loads(out)
    assert code == 0 and len(data["entry"]) == len(catalogs["voipnow"].entries)
    assert any(e["code"] == "030" for e in data["entry"])
    code, out, _ = run(capsys, "export", "lifecell", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == len(catalogs["lifecell"].entries)
    assert rows[0]["text_uk"] and rows[0]["text_ru"] and rows[0]["text_en"]


def test_validate_accepts_a_good_file_and_names_the_field_of_a_bad_one(capsys, tmp_path: Path) -> None:
    good = tmp_path / "acme.toml"
    good.write_text('id = "acme"\ntitle = "t"\nsource = "s"\noriginal_lang = "en"\ncode_space = "sip"\n'
                    'class_scheme = "none"\nfallback = "sip"\n[[entry]]\ncode = "503"\ncategory = "capacity"\n'
                    'retry = "failover"\ntext = {uk = "а", ru = "б", en = "c"}\n', encoding="utf-8")
    code, out, _ = run(capsys, "validate", str(good))
    assert code == 0 and "ok" in out
    bad = tmp_path / "bad.toml"
    bad.write_text(good.read_text(encoding="utf-8").replace('retry = "failover"', 'retry = "maybe"'), encoding="utf-8")
    code, _, err = run(capsys, "validate", str(bad))
    assert code == 2 and "bad.toml" in err and "entry #1 (code '503')" in err and "'retry'" in err


def test_user_catalog_dir_is_used_by_lookup(capsys, tmp_path: Path) -> None:
    (tmp_path / "acme.toml").write_text(
        'id = "acme"\ntitle = "t"\nsource = "s"\noriginal_lang = "en"\ncode_space = "sip"\nclass_scheme = "none"\n'
        'fallback = "sip"\n[[entry]]\ncode = "486"\ncategory = "capacity"\nretry = "failover"\n'
        'text = {uk = "а", ru = "б", en = "all lines busy"}\n', encoding="utf-8")
    code, out, _ = run(capsys, "lookup", "--catalog-dir", str(tmp_path), "--catalog", "acme", "--json", "486")
    assert code == 0 and json.loads(out)["texts"]["en"] == "all lines busy"


def test_console_script_entry_point_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "pbx_codes", "lookup", "--json", "486"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["category"] == "busy"


def test_export_csv_writes_no_cell_a_spreadsheet_would_run_as_a_formula(capsys, tmp_path: Path) -> None:
    (tmp_path / "evil.toml").write_text('''
id = "evil"
title = '=HYPERLINK("http://evil.example","x")'
source = "test"
original_lang = "en"
code_space = "sip"
class_scheme = "none"
fallback = "sip"

[[entry]]
code = "503"
phrase = "=cmd|' /C calc'!A0"
category = "capacity"
retry = "failover"
[entry.text]
uk = "+HYPERLINK(\\"http://evil.example\\")"
ru = "@SUM(1+1)"
en = "-2+3"
''', encoding="utf-8")
    code, out, err = run(capsys, "export", "evil", "--format", "csv", "--catalog-dir", str(tmp_path))
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["phrase"] == "'=cmd|' /C calc'!A0" and rows[0]["text_en"] == "'-2+3"
    assert rows[0]["text_uk"].startswith("'+") and rows[0]["text_ru"] == "'@SUM(1+1)"
    assert not any(v and v[0] in "=+-@\t\r" for row in rows for v in row.values())
