"""What the console needs from the store, the metrics and the alerts, as small Protocols.

The console depends on these shapes, not on a module, so it runs over the SQLite or PostgreSQL store, over the
in-memory view of the last hangups when no store is configured, and over a test double alike. The store's queries
are coroutines, always: the console awaits each one and never asks which kind it got.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

Row = Mapping[str, Any]
"""One leg as `Annotation.to_dict()` shapes it (the store's rows have the same keys)."""


@runtime_checkable
class ConsoleStore(Protocol):
    """The queries behind the console's API, every one a coroutine (the SQLite and PostgreSQL store, the in-memory
    view of the last hangups, a test double). ``instance`` narrows to one agent of a fleet."""

    async def recent(self, *, limit: int = 100, pbx: str | None = None, trunk: str | None = None,
                     category: str | None = None, code: str | None = None, search: str | None = None,
                     instance: str | None = None) -> Sequence[Row]:
        """Newest first; `search` matches a call id, a leg id or a number (substring)."""

    async def call(self, linkedid: str) -> Sequence[Row]:
        """Every leg of one call, oldest first; empty when the call is not known."""

    async def window_counts(self, windows: Sequence[int] = (60, 300, 900), now: float | None = None,
                            instance: str | None = None) -> Mapping[str, Any]:
        """Hangups per trunk and per category over each window (seconds): see `stats_payload` for the shape."""

    async def failure_rate_series(self, bucket: int = 60, buckets: int = 15, now: float | None = None,
                                  instance: str | None = None) -> Sequence[Mapping[str, Any]]:
        """Oldest first, one point per bucket: {"t": start, "total": n, "failed": n, "rate": failed/total}."""

    async def unknown_codes(self, *, instance: str | None = None) -> Sequence[Mapping[str, Any]]:
        """Codes no catalog knew exactly: {"trunk", "catalog", "code", "phrase", "count", "last_seen"}. `instance`
        by keyword: the store's own method takes a trunk and a time first."""

    async def export_unknown(self, trunk: str | None = None) -> str:
        """The unknown codes (of one trunk) as a starter catalog TOML for a person to fill in."""


class MetricsRenderer(Protocol):
    def render(self) -> bytes:
        """The Prometheus text exposition."""


AlertCallback = Callable[[Any], Any]


@runtime_checkable
class AlertSource(Protocol):
    """Something that calls back with each fired or cleared alert (`pbx_codes.sinks.alerts.AlertEngine`)."""

    def add_listener(self, callback: AlertCallback) -> Any: ...


__all__ = ["AlertCallback", "AlertSource", "ConsoleStore", "MetricsRenderer", "Row"]
