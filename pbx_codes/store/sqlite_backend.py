"""SQLite, the embedded default: the stdlib driver on one worker thread, so the event loop never waits on disk.

One thread owns the connection (sqlite3 objects must stay on their thread) and runs calls in order, which also
serializes writes. WAL mode lets a console read while a batch is being written by another process.
"""
from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from pbx_codes.store.schema import (
    COLUMNS,
    INSERT_COLUMNS,
    SCHEMA_VERSION_TABLE,
    SQLITE,
    pending_migrations,
    reason_texts,
    stored_values,
)

T = TypeVar("T")
_INSERT = f"INSERT INTO hangups ({INSERT_COLUMNS}) VALUES ({', '.join('?' for _ in COLUMNS)}) " \
          "ON CONFLICT (rid) DO NOTHING"
_INSERT_TEXTS = "INSERT INTO reason_texts (texts_id, catalog, matched, original_lang, uk, ru, en, first_seen) " \
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (texts_id) DO NOTHING"


class SqliteBackend:
    """A database file (or `:memory:`) behind a single-thread executor."""

    dialect = SQLITE

    def __init__(self, path: str) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pbx-codes-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._texts_known: set[str] = set()  # texts ids this process has stored (the table only grows)

    def describe(self) -> str:
        return f"sqlite:{self.path}"

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate(conn)
            self._conn = conn
        return self._conn

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")  # one migrator at a time, even across processes sharing the file
        try:
            conn.execute(SCHEMA_VERSION_TABLE.format(real=SQLITE.real))
            current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
            for migration in pending_migrations(int(current)):
                for statement in migration.render(SQLITE):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                             (migration.version, migration.description, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def ensure(self) -> None:
        await self._run(self._connection)

    def _insert(self, rows: Sequence[dict[str, Any]]) -> int:
        conn = self._connection()
        texts = [t for t in reason_texts(rows) if t[0] not in self._texts_known]
        conn.execute("BEGIN")
        try:
            if texts:
                now = time.time()
                conn.executemany(_INSERT_TEXTS, [(*t, now) for t in texts])
            added = conn.executemany(_INSERT, [stored_values(r) for r in rows]).rowcount  # trigger rows not counted
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._texts_known.update(t[0] for t in texts)
        return max(added, 0)

    async def insert(self, rows: Sequence[dict[str, Any]]) -> int:
        """Write rows in one transaction; rows whose `rid` is already stored are skipped. Returns rows added."""
        return await self._run(self._insert, rows)

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self._connection().execute(sql, tuple(params)).fetchall()

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self._run(self._fetch, sql, params)

    def _execute(self, sql: str, params: Sequence[Any]) -> int:
        return self._connection().execute(sql, tuple(params)).rowcount

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self._run(self._execute, sql, params)

    @staticmethod
    def is_transient(exc: BaseException) -> bool:
        """Locked, busy or a disk that went away: worth retrying. A constraint or type error is not."""
        return isinstance(exc, (sqlite3.OperationalError, OSError))

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        try:
            await self._run(self._close)
        finally:
            self._executor.shutdown(wait=False)


__all__ = ["SqliteBackend"]
