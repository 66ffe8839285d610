"""The last hangups kept in memory: the console's data when no store is configured.

Bounded (the `[console] history` size), fed from the same bus subscription as the live feed, and answering the same
queries as the store, so a console over a bare listener still shows counts, a chart and call details.
"""
from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pbx_codes.model import Annotation
from pbx_codes.store.export import starter_catalog

SUCCESS_CATEGORIES = frozenset({"ok", "pending"})
"""Categories that are not failures, for the failure rate."""


def is_unknown(row: Mapping[str, Any]) -> bool:
    """A code no catalog knew exactly: read by class, by Q.850 only, or not at all."""
    return row.get("match_kind") in ("class", "none") or row.get("category") == "unknown"


def _when(row: Mapping[str, Any]) -> float:
    return float(row.get("timestamp") or 0.0)


@dataclass(slots=True)
class MemoryStore:
    """A ring of annotation dicts, newest last."""

    size: int = 500
    rows: deque[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.rows = deque(maxlen=self.size)

    def add(self, annotation: Annotation, now: float | None = None) -> None:
        row = annotation.to_dict()
        if row["timestamp"] is None:
            row["timestamp"] = time.time() if now is None else now
        self.rows.append(row)

    async def recent(self, *, limit: int = 100, pbx: str | None = None, trunk: str | None = None,
               category: str | None = None, code: str | None = None, search: str | None = None,
               instance: str | None = None) -> list[dict[str, Any]]:
        out = []
        for row in reversed(self.rows):
            if (instance and row.get("instance") != instance) or (pbx and row.get("pbx") != pbx) \
                    or (trunk and row.get("trunk") != trunk) or (category and row.get("category") != category) \
                    or (code and row.get("code") != code):
                continue
            if search and not any(search in str(row.get(k) or "") for k in ("linkedid", "uniqueid", "number")):
                continue
            out.append(row)
            if len(out) >= limit:
                break
        return out

    async def call(self, linkedid: str) -> list[dict[str, Any]]:
        return sorted((r for r in self.rows if r.get("linkedid") == linkedid), key=_when)

    async def window_counts(self, windows: Sequence[int] = (60, 300, 900), now: float | None = None,
                      instance: str | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        by_trunk: dict[str, list[int]] = {}
        by_category: dict[str, list[int]] = {}
        total = [0] * len(windows)
        for row in self.rows:
            if instance and row.get("instance") != instance:
                continue
            age = now - _when(row)
            for i, window in enumerate(windows):
                if 0 <= age < window:
                    total[i] += 1
                    by_trunk.setdefault(row.get("trunk") or "-", [0] * len(windows))[i] += 1
                    by_category.setdefault(row.get("category") or "unknown", [0] * len(windows))[i] += 1
        return {"windows": list(windows), "total": total, "by_trunk": by_trunk, "by_category": by_category}

    async def failure_rate_series(self, bucket: int = 60, buckets: int = 15, now: float | None = None,
                            instance: str | None = None) -> list[dict[str, Any]]:
        now = time.time() if now is None else now
        start = (int(now) // bucket - buckets + 1) * bucket
        total, failed = Counter[int](), Counter[int]()
        for row in self.rows:
            if instance and row.get("instance") != instance:
                continue
            index = (int(_when(row)) - start) // bucket
            if 0 <= index < buckets:
                total[index] += 1
                failed[index] += row.get("category") not in SUCCESS_CATEGORIES
        return [{"t": start + i * bucket, "total": total[i], "failed": failed[i],
                 "rate": failed[i] / total[i] if total[i] else 0.0} for i in range(buckets)]

    async def unknown_codes(self, *, instance: str | None = None) -> list[dict[str, Any]]:
        seen: dict[tuple[Any, ...], dict[str, Any]] = {}
        for row in self.rows:
            if not is_unknown(row) or (instance and row.get("instance") != instance):
                continue
            key = (row.get("trunk"), row.get("catalog"), row.get("code"), row.get("phrase"))
            item = seen.setdefault(key, {"trunk": key[0], "catalog": key[1], "code": key[2], "phrase": key[3],
                                         "count": 0, "last_seen": 0.0})
            item["count"] += 1
            item["last_seen"] = max(item["last_seen"], _when(row))
        return sorted(seen.values(), key=lambda i: (-i["count"], str(i["code"])))

    async def export_unknown(self, trunk: str | None = None) -> str:
        # The store's own exporter: one format, and a file the catalog loader accepts as it is.
        ident = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in (trunk or "my-carrier").lower())
        return starter_catalog([u for u in await self.unknown_codes() if trunk is None or u["trunk"] == trunk], trunk,
                               catalog_id=ident)


__all__ = ["MemoryStore", "SUCCESS_CATEGORIES", "is_unknown"]
