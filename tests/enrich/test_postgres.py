"""cdr_pgsql and mod_cdr_pg_csv tables annotated in place, against a real PostgreSQL (the `postgres_url` fixture
when the suite provides one; skipped otherwise)."""
from __future__ import annotations

import pytest

from pbx_codes.enrich import get_preset
from pbx_codes.enrich.mapping import PBX_COLUMNS
from pbx_codes.enrich.tables import enrich_postgres

psycopg = pytest.importorskip("psycopg", reason="psycopg 3 is not installed")


@pytest.fixture()
def pg_url(request) -> str:
    try:
        return request.getfixturevalue("postgres_url")
    except pytest.FixtureLookupError:
        pytest.skip("no PostgreSQL: the postgres_url fixture is not provided")


CDR_PGSQL = """CREATE TABLE {t} (calldate timestamptz NOT NULL DEFAULT now(), clid varchar(80) NOT NULL DEFAULT '',
 src varchar(80) NOT NULL DEFAULT '', dst varchar(80) NOT NULL DEFAULT '', dcontext varchar(80) NOT NULL DEFAULT '',
 channel varchar(80) NOT NULL DEFAULT '', dstchannel varchar(80) NOT NULL DEFAULT '',
 lastapp varchar(80) NOT NULL DEFAULT '', lastdata varchar(80) NOT NULL DEFAULT '',
 duration bigint NOT NULL DEFAULT 0, billsec bigint NOT NULL DEFAULT 0, disposition varchar(45) NOT NULL DEFAULT '',
 amaflags bigint NOT NULL DEFAULT 0, accountcode varchar(20) NOT NULL DEFAULT '',
 uniqueid varchar(150) NOT NULL DEFAULT '', userfield varchar(255) NOT NULL DEFAULT '',
 linkedid varchar(150) NOT NULL DEFAULT '', sequence bigint NOT NULL DEFAULT 0,
 pbx_rawcause varchar(255) NOT NULL DEFAULT '')"""
ROWS = [("1.1", "NO ANSWER", "SIP 409 Not enough money"), ("1.2", "BUSY", ""), ("1.3", "ANSWERED", ""),
        ("1.4", "", ""), ("1.5", "CONGESTION", "SIP 503 Simultaneous calls limit reached")]


def test_cdr_pgsql_table_is_annotated_once_and_resumes(pg_url, make_annotator):
    table = "cdr_enrich_test"
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute(CDR_PGSQL.format(t=table))
        for uid, disposition, raw in ROWS * 3:
            con.execute(f"INSERT INTO {table} (uniqueid, disposition, pbx_rawcause) VALUES (%s, %s, %s)",
                        (uid, disposition, raw))
    preset = get_preset("asterisk-pgsql")
    try:
        stopped = enrich_postgres(pg_url, preset, make_annotator(), table=table, batch_rows=2, stop_after=4,
                                  progress=False)
        assert stopped.rows_read == 4
        rest = enrich_postgres(pg_url, preset, make_annotator(), table=table, batch_rows=2, progress=False)
        assert stopped.annotated + rest.annotated == 12 and rest.skipped_no_cause == 3
        again = enrich_postgres(pg_url, preset, make_annotator(), table=table, progress=False)
        assert again.annotated == 0
        with psycopg.connect(pg_url) as con:
            got = con.execute(f"SELECT uniqueid, {', '.join(PBX_COLUMNS)} FROM {table} ORDER BY uniqueid").fetchall()
        money = [dict(zip(("uniqueid", *PBX_COLUMNS), r)) for r in got if r[0] == "1.1"]
        assert len(money) == 3 and all(m["pbx_code"] == "409" and m["pbx_exact"] == "1" for m in money)
        assert all(r[PBX_COLUMNS.index("pbx_category") + 1] is None for r in got if r[0] == "1.4")
    finally:
        with psycopg.connect(pg_url, autocommit=True) as con:
            con.execute(f"DROP TABLE IF EXISTS {table}")


def test_mod_cdr_pg_csv_table_reads_freeswitch_cause_names(pg_url, make_annotator):
    table = "fs_cdr_enrich_test"
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute(f"CREATE TABLE {table} (uuid uuid, destination_number varchar(255), hangup_cause varchar(255), "
                    "sip_hangup_disposition varchar(255), sip_invite_failure_status varchar(8))")
        con.execute(f"INSERT INTO {table} VALUES (gen_random_uuid(), '486', 'USER_BUSY', 'recv_refuse', '486'), "
                    "(gen_random_uuid(), '1000', 'NORMAL_CLEARING', 'recv_bye', NULL)")
    try:
        summary = enrich_postgres(pg_url, get_preset("freeswitch-pg-csv"), make_annotator("freeswitch"),
                                  table=table, progress=False)
        assert summary.annotated == 2
        with psycopg.connect(pg_url) as con:
            got = con.execute(f"SELECT destination_number, pbx_code, pbx_category, pbx_exact FROM {table} "
                              "ORDER BY destination_number").fetchall()
        assert got == [("1000", "", "ok", "false"), ("486", "486", "busy", "true")]
    finally:
        with psycopg.connect(pg_url, autocommit=True) as con:
            con.execute(f"DROP TABLE IF EXISTS {table}")


def test_a_url_libpq_cannot_read_is_refused_without_its_password(make_annotator):
    from pbx_codes.enrich.files import EnrichError

    for url in ("postgresql://u:s3cret@[::1:1/db", "postgresql://u:s3%zzcret@h/db",
                "postgresql://u@127.0.0.1:1/db?password=s3cret&connect_timeout=1"):
        with pytest.raises(EnrichError) as caught:
            enrich_postgres(url, get_preset("asterisk-pgsql"), make_annotator(), progress=False)
        assert "s3" not in str(caught.value)


def test_a_table_that_cannot_take_the_pbx_columns_is_a_clear_error_not_a_crash(pg_url, make_annotator):
    from pbx_codes.enrich.files import EnrichError

    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("DROP VIEW IF EXISTS cdr_view_test")
        con.execute("DROP TABLE IF EXISTS cdr_view_base")
        con.execute(CDR_PGSQL.format(t="cdr_view_base"))
        con.execute("CREATE VIEW cdr_view_test AS SELECT uniqueid, disposition, pbx_rawcause FROM cdr_view_base")
    try:
        with pytest.raises(EnrichError, match=r"cdr_view_test|view"):
            enrich_postgres(pg_url, get_preset("asterisk-pgsql"), make_annotator(), table="cdr_view_test",
                            progress=False)
    finally:
        with psycopg.connect(pg_url, autocommit=True) as con:
            con.execute("DROP VIEW IF EXISTS cdr_view_test")
            con.execute("DROP TABLE IF EXISTS cdr_view_base")
