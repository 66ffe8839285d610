"""Legs over a time range from what the program keeps: the SQLite/PostgreSQL store, or the console's in-memory view
(rows shaped like `Annotation.to_dict()`)."""
from __future__ import annotations

from typing import Any

from pbx_codes.quality.legs import Leg, leg_from_row

_COLUMNS = ("pbx", "trunk", "ts", "category", "sip", "code", "phrase", "catalog", "outcome", "attempt", "started_at",
            "progress_at", "answered_at", "ended_at", "linkedid", "uniqueid", "instance")


def legs_query(since: float, until: float, *, trunk: str | None = None, pbx: str | None = None,
               category: str | None = None, instance: str | None = None) -> tuple[str, list[Any]]:
    """SQL (``?`` placeholders) for the legs that ended in [since, until), oldest first."""
    where = ["ts >= ?", "ts < ?"]
    params: list[Any] = [since, until]
    for column, value in (("trunk", trunk), ("pbx", pbx), ("category", category), ("instance", instance)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    return f"SELECT {', '.join(_COLUMNS)} FROM hangups WHERE {' AND '.join(where)} ORDER BY ts, id", params


async def legs_in_range(store: Any, since: float, until: float, *, trunk: str | None = None,
                        pbx: str | None = None, category: str | None = None, memory_limit: int = 100_000,
                        instance: str | None = None) -> list[Leg]:
    """The legs that ended in [since, until): by SQL from a store, or filtered from an in-memory view's rows."""
    backend = getattr(store, "backend", None)
    if backend is not None:
        sql, params = legs_query(since, until, trunk=trunk, pbx=pbx, category=category, instance=instance)
        return [leg_from_row(dict(zip(_COLUMNS, record))) for record in await backend.fetch(sql, params)]
    rows = await store.recent(limit=memory_limit, pbx=pbx, trunk=trunk, category=category,
                              **({"instance": instance} if instance else {}))
    legs = [leg_from_row(row) for row in rows]
    return sorted((leg for leg in legs if since <= leg.ts < until), key=lambda leg: leg.ts)


__all__ = ["legs_in_range", "legs_query"]
