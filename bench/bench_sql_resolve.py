"""Annotating a CDR table inside PostgreSQL with `pbx_codes_resolve()` (from `pbx-codes export --format sql`).

A generated table of N CDRs (default 100,000: every catalog, known and unknown codes, reason phrases, API methods)
is annotated four ways in the same run, each checked to give the same annotations:

- baseline: the Python way for a table in a database: read every row, `Resolver.lookup`, write the answers back
  (COPY into a temporary table, one `UPDATE ... FROM`);
- SQL per row: one `UPDATE ... FROM cdr CROSS JOIN LATERAL pbx_codes_resolve(...)`, with and without JIT;
- SQL per distinct key: resolve each distinct (catalog, code, phrase, method) once, join back.

Also the Python resolver alone (no database), cached and uncached. Reported as rows/s and as ratios to the baseline.

    python bench/bench_sql_resolve.py [--rows 100000]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pbx_codes.catalog import load_catalogs
from pbx_codes.catalog.sql_export import sql_script, view_of
from pbx_codes.resolve import Resolver

ANNOTATION = ("pbx_category", "pbx_retry", "pbx_exact", "pbx_q850", "pbx_reason")


def generate(resolver: Resolver, rows: int, seed: int = 14) -> list[tuple]:
    """CDR keys: mostly codes the catalogs know (a third with their phrase), the rest unknown codes."""
    rng = random.Random(seed)
    catalogs = list(resolver.catalogs)
    out = []
    for i in range(rows):
        catalog = rng.choice(catalogs)
        entry = rng.choice(catalog.entries)
        method = rng.choice(sorted(entry.methods)) if entry.methods else None
        if rng.random() < 0.7:
            code = entry.code
            phrase = (entry.match or entry.phrase) if rng.random() < 0.33 else None
        else:
            code, phrase = str(rng.randint(100, 9999)), None
        out.append((i, catalog.id, code, phrase, method))
    return out


def expected(resolver: Resolver, row: tuple) -> tuple:
    _, catalog, code, phrase, method = row
    ann = resolver.lookup(code, phrase, catalog=catalog, method=method)
    return ann.category.value, ann.retry.value, ann.exact, ann.q850, ann.texts["en"]


def reset(conn) -> None:
    conn.execute("UPDATE cdr SET " + ", ".join(f"{c} = NULL" for c in ANNOTATION))
    conn.execute("VACUUM cdr")


def timed(conn, sql: str, setting: str | None = None) -> float:
    reset(conn)
    with conn.transaction():
        if setting:
            conn.execute(setting)
        start = time.perf_counter()
        conn.execute(sql)
        elapsed = time.perf_counter() - start
    return elapsed


_SET = ("pbx_category = r.category, pbx_retry = r.retry, pbx_exact = r.exact, pbx_q850 = r.q850, "
        "pbx_reason = r.text_en")
PER_ROW = ("UPDATE cdr SET " + _SET + " FROM cdr AS c CROSS JOIN LATERAL "
           "pbx_codes_resolve(c.catalog, c.code, c.phrase, c.method) AS r WHERE cdr.id = c.id")
PER_KEY = (  # MATERIALIZED: resolve each key once, before the join (else the planner may call it per row)
    "WITH r AS MATERIALIZED (SELECT k.*, x.* FROM (SELECT DISTINCT coalesce(catalog, '') AS kc, "
    "coalesce(code, '') AS kd, coalesce(phrase, '') AS kp, coalesce(method, '') AS km FROM cdr) AS k "
    "CROSS JOIN LATERAL pbx_codes_resolve(k.kc, k.kd, k.kp, k.km) AS x) "
    "UPDATE cdr SET " + _SET + " FROM r "
    "WHERE (coalesce(cdr.catalog, ''), coalesce(cdr.code, ''), coalesce(cdr.phrase, ''), coalesce(cdr.method, ''))"
    " = (r.kc, r.kd, r.kp, r.km)")


def python_round_trip(conn, resolver: Resolver) -> float:
    reset(conn)
    with conn.transaction():
        start = time.perf_counter()
        rows = conn.execute("SELECT id, catalog, code, phrase, method FROM cdr").fetchall()
        conn.execute("CREATE TEMP TABLE answer (id int, category text, retry text, exact boolean, q850 bigint, "
                     "reason text) ON COMMIT DROP")
        with conn.cursor().copy("COPY answer FROM STDIN") as copy:
            for row in rows:
                copy.write_row((row[0], *expected(resolver, row)))
        conn.execute("UPDATE cdr SET pbx_category = a.category, pbx_retry = a.retry, pbx_exact = a.exact, "
                     "pbx_q850 = a.q850, pbx_reason = a.reason FROM answer AS a WHERE cdr.id = a.id")
        return time.perf_counter() - start


def check(conn, resolver: Resolver, rows: list[tuple], label: str) -> None:
    got = conn.execute("SELECT " + ", ".join(ANNOTATION) + " FROM cdr ORDER BY id").fetchall()
    wrong = sum(1 for row, answer in zip(rows, got) if tuple(answer) != expected(resolver, row))
    if wrong:
        raise SystemExit(f"{label}: {wrong} rows differ from the resolver")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=0,
                        help="draw the rows from this many distinct keys (a PBX's few causes); 0: every row drawn anew")
    args = parser.parse_args()
    import psycopg

    from tests.conftest_postgres import LocalPostgres

    resolver = Resolver(load_catalogs())
    rows = generate(resolver, args.rows)
    if args.keys:
        pool, rng = generate(resolver, args.keys), random.Random(15)
        rows = [(i, *rng.choice(pool)[1:]) for i in range(args.rows)]
    server = LocalPostgres.launch()
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute(sql_script(view_of(resolver)))
            conn.execute("CREATE TABLE cdr (id int PRIMARY KEY, catalog text, code text, phrase text, method text, "
                         "pbx_category text, pbx_retry text, pbx_exact boolean, pbx_q850 bigint, pbx_reason text)")
            with conn.cursor().copy("COPY cdr (id, catalog, code, phrase, method) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            conn.execute("ANALYZE cdr")
            distinct = conn.execute("SELECT count(*) FROM (SELECT DISTINCT catalog, code, phrase, method FROM cdr) k"
                                    ).fetchone()[0]
            print(f"{args.rows:,} CDRs, {distinct:,} distinct (catalog, code, phrase, method) keys")
            results = {}
            results["baseline: read, Resolver.lookup, COPY back, UPDATE FROM"] = python_round_trip(conn, resolver)
            check(conn, resolver, rows, "round trip")
            for label, sql, setting in (
                    ("SQL per row, jit off", PER_ROW, "SET LOCAL jit = off"),
                    ("SQL per row, server default (jit on)", PER_ROW, None),
                    ("SQL per distinct key, jit off", PER_KEY, "SET LOCAL jit = off")):
                results[label] = timed(conn, sql, setting)
                check(conn, resolver, rows, label)
        base = results["baseline: read, Resolver.lookup, COPY back, UPDATE FROM"]
        for label, seconds in results.items():
            print(f"{label:<58} {args.rows / seconds:>12,.0f} rows/s  {seconds:6.2f} s  {base / seconds:5.2f}x")
        fresh = Resolver(load_catalogs())
        start = time.perf_counter()
        for row in rows:
            expected(fresh, row)
        cached = time.perf_counter() - start
        start = time.perf_counter()
        for row in rows:
            fresh._cache.clear()
            expected(fresh, row)
        uncached = time.perf_counter() - start
        print(f"{'Python resolver alone, cached (no database)':<58} {args.rows / cached:>12,.0f} rows/s")
        print(f"{'Python resolver alone, uncached (no database)':<58} {args.rows / uncached:>12,.0f} rows/s")
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
