"""Shared by the console tests: annotations resolved by the real resolver, and doubles for alerts and metrics."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from pbx_codes.model import Annotation, Observation, Side
from pbx_codes.resolve import Resolver

LIFECELL = "lifecell-trunk"
HOSTILE = "<img src=x onerror=alert(1)>"


def hangup(resolver: Resolver, *, sip: str = "503", phrase: str | None = "Simultaneous calls limit reached",
           trunk: str = LIFECELL, number: str = "+380441234567", call_id: str = "1700000000.1",
           leg_id: str = "1700000000.2", pbx: str = "asterisk", timestamp: float | None = None,
           q850: int | None = None) -> Annotation:
    """One failed leg as an observer would report it, resolved through the shipped catalogs."""
    return resolver.resolve(Observation(sip_code=sip, phrase=phrase, trunk=trunk, number=number, call_id=call_id,
                                        leg_id=leg_id, pbx=pbx, timestamp=timestamp, q850=q850,
                                        hangup_by=Side.CARRIER, channel=f"PJSIP/{trunk}-00000001"))


@dataclass(slots=True)
class FakeAlerts:
    """Calls its listeners back, as the alerts engine does when a rule fires or clears."""

    listeners: list[Callable[[Any], Any]] = field(default_factory=list)

    def add_listener(self, callback: Callable[[Any], Any]) -> None:
        self.listeners.append(callback)

    def emit(self, **event: Any) -> None:
        for callback in self.listeners:
            callback(dict(event))


@dataclass(slots=True)
class FakeMetrics:
    body: bytes = b"# HELP pbx_codes_hangups_total Hangups\npbx_codes_hangups_total 3.0\n"

    def render(self) -> bytes:
        return self.body
