"""Shared by the console tests: annotations resolved by the real resolver, and doubles for alerts and metrics."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from support.hangups import resolved_hangup

HOSTILE = "<img src=x onerror=alert(1)>"

# One failed leg as an observer would report it (the lifecell 503 unless told otherwise), resolved for real.
hangup = partial(resolved_hangup, phrase="Simultaneous calls limit reached")


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
