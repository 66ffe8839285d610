"""Shared by the store tests: annotations from the real resolver, and a database that can be switched off."""
from __future__ import annotations

from typing import Any, Sequence

from pbx_codes.model import Annotation, Observation, Side
from pbx_codes.resolve import Resolver

LIFECELL = "lifecell-trunk"
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


def hangup(resolver: Resolver, *, sip: str = "503", phrase: str | None = "Service Unavailable",
           trunk: str = LIFECELL, number: str = "+380441234567", call_id: str = "1700000000.1",
           leg_id: str = "1700000000.2", pbx: str = "asterisk", timestamp: float | None = None,
           q850: int | None = None) -> Annotation:
    """One failed leg as an observer reports it, resolved through the shipped catalogs."""
    return resolver.resolve(Observation(sip_code=sip, phrase=phrase, trunk=trunk, number=number, call_id=call_id,
                                        leg_id=leg_id, pbx=pbx, timestamp=timestamp, q850=q850,
                                        hangup_by=Side.CARRIER, channel=f"PJSIP/{trunk}-00000001"))


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
