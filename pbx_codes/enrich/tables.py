"""Annotating CDR tables in place: cdr_sqlite3_custom (SQLite) and cdr_pgsql / mod_cdr_pg_csv (PostgreSQL).

A database is annotated where it is: the rows to do are the ones whose ``pbx_category`` is NULL or empty (Asterisk
writes an unset CDR variable as ``''``), so a stopped run resumes by simply running again and a row is never
changed twice. Rows are read in batches in the order of a stable key (SQLite's rowid; PostgreSQL's ctid, or
`order_key`), each batch updated and committed on its own, and each UPDATE repeats the predicate, so a row that
someone else annotated meanwhile is left alone. Missing pbx_* columns are added (as TEXT) first.
Values are always bound as parameters and identifiers quoted, so neither a phrase nor a table name can change a
statement.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from pbx_codes.enrich.files import EnrichError
from pbx_codes.enrich.interpret import NO_CAUSE, KeyPlan, RowAnnotator
from pbx_codes.enrich.mapping import DONE_COLUMN, PBX_COLUMNS, Preset
from pbx_codes.enrich.progress import Progress
from pbx_codes.enrich.summary import Summary
from pbx_codes.store.dsn import safe_error, safe_url

BATCH_ROWS = 5_000


def quote_ident(name: str) -> str:
    """An SQL identifier, double-quoted (a dotted name as schema.table)."""
    if not name or "\x00" in name:
        raise EnrichError(f"invalid identifier {name!r}")
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


class _TableJob:
    """What both databases share: the columns to read, the batch loop, the counting."""

    placeholder = "?"

    def __init__(self, preset: Preset, annotator: RowAnnotator, table: str, *, batch_rows: int = BATCH_ROWS,
                 progress: bool | None = None, stop_after: int | None = None) -> None:
        self.preset, self.annotator, self.table = preset, annotator, table
        self.batch_rows, self.progress_enabled, self.stop_after = max(1, batch_rows), progress, stop_after

    def read_columns(self, existing: Sequence[str]) -> tuple[tuple[str, ...], KeyPlan]:
        wanted: list[str] = []
        for name in self.annotator.key_fields():
            for column in self.preset.mapping.candidates(name):
                if column in existing and column not in wanted:
                    wanted.append(column)
        plan = KeyPlan.build(self.preset.mapping.bind(wanted), self.annotator.key_fields())
        if plan.empty:
            raise EnrichError(f"table {self.table} has none of the mapped columns; use --map FIELD=COLUMN")
        return tuple(wanted), plan

    def pending_predicate(self) -> str:
        done = quote_ident(DONE_COLUMN)
        return f"({done} IS NULL OR {done} = '')"

    def update_sql(self, key_column: str, key_placeholder: str | None = None) -> str:
        sets = ", ".join(f"{quote_ident(c)} = {self.placeholder}" for c in PBX_COLUMNS)
        return (f"UPDATE {quote_ident(self.table)} SET {sets} WHERE {key_column} = "
                f"{key_placeholder or self.placeholder} AND {self.pending_predicate()}")

    def process(self, batches: Callable[[Any], list[tuple[Any, ...]]],
                apply: Callable[[list[tuple[Any, ...]]], None], total: int, plan: KeyPlan, summary: Summary) -> None:
        """Run the batch loop: `batches(after)` gives rows (key, *columns) after a key; `apply` writes updates."""
        key_of = plan.row_key()
        progress = Progress(total, enabled=self.progress_enabled, unit="rows")
        after = None
        began = time.perf_counter()
        while True:
            rows = batches(after)
            if not rows:
                break
            updates = []
            for row in rows:
                summary.rows_read += 1
                outcome = self.annotator.outcome(plan, key_of(row[1:]))
                if outcome.kind == NO_CAUSE:
                    summary.skipped_no_cause += 1
                else:
                    updates.append((*outcome.values, row[0]))
                    summary.count(outcome.category, outcome.kind)
                if self.stop_after is not None and summary.rows_read >= self.stop_after:
                    break
            after = rows[-1][0]
            apply(updates)
            progress.update(summary.rows_read, summary.rows_read)
            if self.stop_after is not None and summary.rows_read >= self.stop_after:
                summary.note = f"stopped after {summary.rows_read:,} rows (the rest stay pending)"
                break
        progress.close()
        summary.elapsed = time.perf_counter() - began


def _table_info_sql(table: str) -> str:
    """SQLite's column list of `table`; a schema goes before the pragma (``PRAGMA main.table_info(cdr)``), since the
    pragma's argument is a bare table name."""
    schema, _, name = table.rpartition(".")
    if schema:
        return f"PRAGMA {quote_ident(schema)}.table_info({quote_ident(name)})"
    return f"PRAGMA table_info({quote_ident(table)})"


def _text_row(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(v if v is None or isinstance(v, str) else str(v) for v in row)


def enrich_sqlite(path: str, preset: Preset, annotator: RowAnnotator, *, table: str | None = None,
                  **options: Any) -> Summary:
    """Annotate a cdr_sqlite3_custom database file in place."""
    import sqlite3
    from pathlib import Path

    table = table or preset.table
    if not Path(path).is_file():
        raise EnrichError(f"{path}: cannot be read: no such file")
    job = _TableJob(preset, annotator, table, **options)
    summary = Summary(source=f"{path} (table {table})", output="in place")
    try:
        con = sqlite3.connect(path, timeout=10)
    except sqlite3.Error as exc:
        raise EnrichError(f"{path}: cannot be opened: {exc}") from None
    try:
        try:
            info = con.execute(_table_info_sql(table)).fetchall()
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorname", "") in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
                raise EnrichError(f"{path}: not an SQLite database: {exc}") from None
            raise EnrichError(f"{path}: table {table!r} cannot be read: {exc}") from None
        existing = [r[1] for r in info]
        if not existing:
            raise EnrichError(f"{path}: no table {table!r}")
        with con:
            for column in PBX_COLUMNS:
                if column not in existing:
                    con.execute(f"ALTER TABLE {quote_ident(table)} ADD COLUMN {quote_ident(column)} TEXT")
        columns, plan = job.read_columns(existing)
        select = (f"SELECT rowid, {', '.join(quote_ident(c) for c in columns)} FROM {quote_ident(table)} "
                  f"WHERE rowid > ? AND {job.pending_predicate()} ORDER BY rowid LIMIT {job.batch_rows}")
        total = con.execute(f"SELECT count(*) FROM {quote_ident(table)} WHERE {job.pending_predicate()}").fetchone()[0]
        update = job.update_sql("rowid")

        def batches(after: Any) -> list[tuple[Any, ...]]:
            return [_text_row(r) for r in con.execute(select, (after if after is not None else -2**63,))]

        def apply(updates: list[tuple[Any, ...]]) -> None:
            with con:
                con.executemany(update, updates)

        try:
            job.process(batches, apply, total, plan, summary)
        except sqlite3.OperationalError as exc:
            raise EnrichError(f"{path}: {exc} (a table WITHOUT ROWID is not supported)") from None
    except sqlite3.Error as exc:  # adding the columns or counting: a read-only file, a locked database
        raise EnrichError(f"{path}: {exc}") from None
    finally:
        con.close()
    return summary


def enrich_postgres(url: str, preset: Preset, annotator: RowAnnotator, *, table: str | None = None,
                    order_key: str | None = None, **options: Any) -> Summary:
    """Annotate a cdr_pgsql / mod_cdr_pg_csv table in place (psycopg 3)."""
    try:
        import psycopg
    except ImportError:
        raise EnrichError("PostgreSQL needs psycopg 3: pip install 'psycopg[binary]'") from None
    table = table or preset.table
    job = _TableJob(preset, annotator, table, **options)
    job.placeholder = "%s"
    summary = Summary(source=f"{_safe_url(url)} (table {table})", output="in place")
    try:
        con = psycopg.connect(url, autocommit=False)
    except psycopg.Error as exc:
        raise EnrichError(f"cannot connect to {_safe_url(url)}: {safe_error(exc, url)}") from None
    try:
        schema, _, name = table.rpartition(".")
        rows = con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
            "AND table_schema = COALESCE(NULLIF(%s, ''), current_schema()) ORDER BY ordinal_position",
            (name, schema)).fetchall()
        existing = [r[0] for r in rows]
        if not existing:
            raise EnrichError(f"{_safe_url(url)}: no table {table!r}")
        for column in PBX_COLUMNS:
            if column not in existing:
                con.execute(f"ALTER TABLE {quote_ident(table)} ADD COLUMN IF NOT EXISTS {quote_ident(column)} text")
        con.commit()
        columns, plan = job.read_columns(existing)
        if order_key and order_key not in existing:
            raise EnrichError(f"--order-key {order_key!r} is not a column of {table}")
        key_sql = quote_ident(order_key) if order_key else "ctid"
        key_param = "%s" if order_key else "%s::tid"
        cols = ", ".join(f"{quote_ident(c)}::text" for c in columns)
        # ctid moves when a row is updated; an updated row no longer matches the predicate, so the scan still
        # ends, and a row left pending (no cause) keeps its place behind the cursor.
        select = (f"SELECT {key_sql}, {cols} FROM {quote_ident(table)} WHERE {job.pending_predicate()} "
                  f"AND ({key_sql} > {key_param} OR %s::boolean) ORDER BY {key_sql} LIMIT {job.batch_rows}")
        counted = con.execute(f"SELECT count(*) FROM {quote_ident(table)} WHERE {job.pending_predicate()}").fetchone()
        total = counted[0] if counted else 0  # count(*) always gives one row
        con.commit()
        update = job.update_sql(key_sql, key_param)

        def batches(after: Any) -> list[tuple[Any, ...]]:
            cur = con.execute(select, (after if after is not None else _first_key(order_key), after is None))
            out = [(str(r[0]) if not order_key else r[0], *r[1:]) for r in cur.fetchall()]
            con.commit()
            return out

        def apply(updates: list[tuple[Any, ...]]) -> None:
            if updates:
                with con.cursor() as cur:
                    cur.executemany(update, updates)
            con.commit()

        job.process(batches, apply, total, plan, summary)
    except psycopg.Error as exc:  # anywhere: reading the columns, adding them, counting, the batches
        with contextlib.suppress(psycopg.Error):  # a broken connection cannot roll back; it is closed below
            con.rollback()
        raise EnrichError(f"{_safe_url(url)}: {safe_error(exc, url)}") from None
    finally:
        con.close()
    return summary


def _first_key(order_key: str | None) -> Any:
    return None if order_key else "(0,0)"


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    return safe_url(url)


__all__ = ["enrich_postgres", "enrich_sqlite", "quote_ident"]
