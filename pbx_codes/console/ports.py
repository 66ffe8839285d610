"""What the console needs from the store, the metrics and the alerts, as small Protocols.

The console depends on these shapes, not on a module, so it runs over the SQLite or PostgreSQL store, over the
in-memory view of the last hangups when no store is configured, and over a test double alike. A method may be a
plain function or a coroutine function: the console awaits whatever is awaitable.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

Row = Mapping[str, Any]
"""One leg as `Annotation.to_dict()` shapes it (the store's rows have the same keys)."""


@runtime_checkable
class ConsoleStore(Protocol):
    """The queries behind the console's API."""

    def recent(self, *, limit: int = 100, pbx: str | None = None, trunk: str | None = None,
               category: str | None = None, code: str | None = None, search: str | None = None
               ) -> Sequence[Row] | Awaitable[Sequence[Row]]:
        """Newest first; `search` matches a call id, a leg id or a number (substring)."""

    def call(self, linkedid: str) -> Sequence[Row] | Awaitable[Sequence[Row]]:
        """Every leg of one call, oldest first; empty when the call is not known."""

    def window_counts(self, windows: Sequence[int] = (60, 300, 900), now: float | None = None
                      ) -> Mapping[str, Any] | Awaitable[Mapping[str, Any]]:
        """Hangups per trunk and per category over each window (seconds): see `stats_payload` for the shape."""

    def failure_rate_series(self, bucket: int = 60, buckets: int = 15, now: float | None = None
                            ) -> Sequence[Mapping[str, Any]] | Awaitable[Sequence[Mapping[str, Any]]]:
        """Oldest first, one point per bucket: {"t": start, "total": n, "failed": n, "rate": failed/total}."""

    def unknown_codes(self) -> Sequence[Mapping[str, Any]] | Awaitable[Sequence[Mapping[str, Any]]]:
        """Codes no catalog knew exactly: {"trunk", "catalog", "code", "phrase", "count", "last_seen"}."""

    def export_unknown(self, trunk: str | None = None) -> str | Awaitable[str]:
        """The unknown codes (of one trunk) as a starter catalog TOML for a person to fill in."""


class MetricsRenderer(Protocol):
    def render(self) -> bytes:
        """The Prometheus text exposition."""


AlertCallback = Callable[[Any], Any]


class AlertSource(Protocol):
    """Something that calls back with each fired or cleared alert."""

    def add_listener(self, callback: AlertCallback) -> Any: ...


__all__ = ["AlertCallback", "AlertSource", "ConsoleStore", "MetricsRenderer", "Row"]
