"""Store fixtures: every store test runs on SQLite and on a real PostgreSQL (tests.conftest_postgres)."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from pbx_codes.store import Store, open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """Each store test runs on both databases (PostgreSQL skips with the reason when it cannot start)."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/annotations.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture()
def journal_path(tmp_path: Any) -> str:
    return str(tmp_path / "journal.jsonl")


@pytest_asyncio.fixture()
async def store(store_url: str, journal_path: str) -> AsyncIterator[Store]:
    opened = await open_store(store_url, {"batch_size": 50, "flush_ms": 20, "journal": journal_path,
                                          "retention_days": None})
    opened.start()
    try:
        yield opened
    finally:
        await opened.close()
