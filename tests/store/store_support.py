"""Shared by the store tests: annotations from the real resolver, and a database that can be switched off."""
from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from support.hangups import resolved_hangup

HOSTILE_PHRASES = (
    "Недостатньо коштів на рахунку",
    "Абонент временно недоступен",
    "'; DROP TABLE hangups; --",
    'quote " backslash \\ percent % underscore _',
    "line\r\nX-Injected: 1",
    "nul\x00byte",
    "emoji ☎️ and 中文",
    "<img src=x onerror=alert(1)>",
)


# One failed leg as an observer reports it (a 503 with the standard phrase unless told otherwise), resolved for real.
hangup = partial(resolved_hangup, phrase="Service Unavailable")


class FlakyBackend:
    """A real backend that can be switched off: every call raises a transient error while `down`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.dialect = inner.dialect
        self.down = False
        self.failed_calls = 0

    def describe(self) -> str:
        return "flaky " + self.inner.describe()

    def _check(self) -> None:
        if self.down:
            self.failed_calls += 1
            raise OSError("database switched off by the test")

    async def ensure(self) -> None:
        self._check()
        await self.inner.ensure()

    async def insert(self, rows: Sequence[dict[str, Any]]) -> int:
        self._check()
        return await self.inner.insert(rows)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self.inner.fetch(sql, params)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._check()
        return await self.inner.execute(sql, params)

    def is_transient(self, exc: BaseException) -> bool:
        return self.inner.is_transient(exc)

    async def close(self) -> None:
        await self.inner.close()
