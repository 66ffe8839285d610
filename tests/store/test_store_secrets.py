"""No log line or error of the store carries a piece of the database password, however the URL spells it."""
from __future__ import annotations

import logging
import socket

import pytest

from pbx_codes.store import open_store
from support.hangups import resolved_hangup

pytest.importorskip("psycopg", reason="psycopg 3 is not installed")


def _closed_port() -> int:
    with socket.socket() as s:          # free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.asyncio
@pytest.mark.parametrize("password, pieces", [
    ("pa#ss", ["pa#ss", "#ss"]),          # urllib would read "#ss@host..." as a fragment and print it
    ("pa?ss", ["pa?ss", "?ss"]),          # ... or as a query
    ("p@sswd", ["p@sswd", "sswd"]),       # libpq reads "sswd@127.0.0.1" as the host name and quotes it
])
async def test_store_logs_never_carry_the_password(tmp_path, caplog: pytest.LogCaptureFixture, resolver,
                                                   password: str, pieces: list[str]) -> None:
    url = f"postgresql://pbx:{password}@127.0.0.1:{_closed_port()}/cdr"
    caplog.set_level(logging.DEBUG)
    store = await open_store(url, {"journal": str(tmp_path / "journal.jsonl"), "connect_timeout": 1,
                                   "retention_days": None, "flush_ms": 10, "retry_max": 0.05})
    store.start()
    try:
        store.add(resolved_hangup(resolver, phrase="Simultaneous calls limit reached"))
        with pytest.raises(TimeoutError):           # the database stays away: the writer tries, fails, logs
            await store.flush(timeout=0.5)
    finally:
        await store.close(timeout=0.2)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "127.0.0.1" in text                       # the store did speak of the database ...
    for piece in pieces:                              # ... but never of its password
        assert piece not in text, text
