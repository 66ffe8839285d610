"""Tables annotated in place: a qualified table name works, and every refusal names its real cause."""
from __future__ import annotations

import sqlite3

import pytest

from pbx_codes.enrich import EnrichError, get_preset
from pbx_codes.enrich.tables import enrich_sqlite

PRESET = get_preset("asterisk-sqlite3-custom")


def _cdr_db(path, table: str = "cdr") -> None:
    con = sqlite3.connect(path)
    con.execute(f"CREATE TABLE {table} (uniqueid TEXT, disposition TEXT, pbx_rawcause TEXT)")
    con.executemany(f"INSERT INTO {table} VALUES (?, ?, ?)",
                    [("1.1", "BUSY", "SIP 486 Busy Here"), ("1.2", "NO ANSWER", "SIP 409 Not enough money")])
    con.commit()
    con.close()


def test_a_schema_qualified_table_is_annotated(tmp_path, make_annotator):
    db = tmp_path / "master.db"
    _cdr_db(db)
    summary = enrich_sqlite(str(db), PRESET, make_annotator(), table="main.cdr", progress=False)
    assert summary.rows_read == 2 and summary.annotated == 2
    con = sqlite3.connect(db)
    assert [r[0] for r in con.execute("SELECT pbx_code FROM cdr ORDER BY rowid")] == ["486", "409"]
    con.close()


def test_an_unknown_schema_is_named_not_called_a_broken_database(tmp_path, make_annotator):
    db = tmp_path / "master.db"
    _cdr_db(db)
    with pytest.raises(EnrichError) as caught:
        enrich_sqlite(str(db), PRESET, make_annotator(), table="nope.cdr", progress=False)
    assert "not an SQLite database" not in str(caught.value) and "nope" in str(caught.value)


def test_a_missing_table_is_named(tmp_path, make_annotator):
    db = tmp_path / "master.db"
    _cdr_db(db, "other")
    with pytest.raises(EnrichError, match="no table 'cdr'"):
        enrich_sqlite(str(db), PRESET, make_annotator(), progress=False)


def test_a_file_that_is_not_sqlite_is_called_so(tmp_path, make_annotator):
    db = tmp_path / "master.db"
    db.write_bytes(b"this is not a database\n" * 100)
    with pytest.raises(EnrichError, match="not an SQLite database"):
        enrich_sqlite(str(db), PRESET, make_annotator(), progress=False)
