"""The console's questions as SQL both databases answer, and the answers in the console's shapes.

Pure: each function returns SQL (with `?` placeholders) and parameters, or shapes fetched rows; the store runs them.
The shapes are the ones `pbx_codes.console.ports.ConsoleStore` documents, so the console reads the store and its
in-memory view alike.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pbx_codes.store.schema import SELECT_COLUMNS, Dialect, dict_from_record

SUCCESS_CATEGORIES: tuple[str, ...] = ("ok", "pending")
"""Categories that are not failures, for the failure rate."""
UNKNOWN_KINDS: tuple[str, ...] = ("class", "none")
"""Match kinds of a code no catalog knew exactly."""

Query = tuple[str, list[Any]]


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


RECENT_LOOKBACK = 7 * 86400
"""How far back a filtered `recent` looks: a filter that matches nothing reads a bounded range, not every row."""
SEARCH_LOOKBACK = 3600
"""How far back a search (a substring of a call id, a leg id or a number) looks; /api/call/<id> finds any call."""


def recent(*, limit: int, pbx: str | None = None, trunk: str | None = None, category: str | None = None,
           code: str | None = None, search: str | None = None, instance: str | None = None,
           now: float | None = None) -> Query:
    """Newest first, filtered; `search` is a substring of the call id, the leg id or the number."""
    where: list[str] = []
    params: list[object] = []
    if (pbx or trunk or category or code or search or instance) and now is not None:
        where.append("ts > ?")  # a substring has no index: the search reads the last hour, the others a week
        params.append(now - (SEARCH_LOOKBACK if search else RECENT_LOOKBACK))
    for column, value in (("instance", instance), ("pbx", pbx), ("trunk", trunk), ("category", category),
                          ("code", code)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if search:
        pattern = _like_pattern(search)
        where.append("(linkedid LIKE ? ESCAPE '\\' OR uniqueid LIKE ? ESCAPE '\\' OR number LIKE ? ESCAPE '\\')")
        params += [pattern, pattern, pattern]
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT {SELECT_COLUMNS} FROM hangups{clause} ORDER BY ts DESC, id DESC LIMIT ?", [*params, int(limit)]


def call(linkedid: str) -> Query:
    return f"SELECT {SELECT_COLUMNS} FROM hangups WHERE linkedid = ? ORDER BY ts, id", [linkedid]


def rows(records: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    return [dict_from_record(r) for r in records]


def _instance(instance: str | None) -> tuple[str, list[Any]]:
    return (" AND instance = ?", [instance]) if instance else ("", [])


def window_counts(windows: Sequence[int], now: float, instance: str | None = None) -> Query:
    """Per (trunk, category): how many hangups fell in each window ending now (of one agent, or the fleet)."""
    sums = ", ".join("SUM(CASE WHEN ts > ? THEN 1 ELSE 0 END)" for _ in windows)
    params: list[Any] = [now - w for w in windows]
    extra, extra_params = _instance(instance)
    return (f"SELECT trunk, category, {sums} FROM hangups WHERE ts > ? AND ts <= ?{extra} GROUP BY trunk, category",
            [*params, now - max(windows), now, *extra_params])


def shape_window_counts(windows: Sequence[int], records: Sequence[Sequence[Any]]) -> dict[str, Any]:
    by_trunk: dict[str, list[int]] = {}
    by_category: dict[str, list[int]] = {}
    total = [0] * len(windows)
    for trunk, category, *counts in records:
        t = by_trunk.setdefault(trunk or "-", [0] * len(windows))
        c = by_category.setdefault(category or "unknown", [0] * len(windows))
        for i, n in enumerate(counts):
            n = int(n or 0)
            total[i] += n
            t[i] += n
            c[i] += n
    return {"windows": list(windows), "total": total, "by_trunk": by_trunk, "by_category": by_category}


def series_start(bucket: int, buckets: int, now: float) -> int:
    """The first bucket's start: buckets are aligned to multiples of `bucket`, the last one holds `now`."""
    return (int(now) // bucket - buckets + 1) * bucket


def failure_rate_series(dialect: Dialect, bucket: int, buckets: int, now: float, instance: str | None = None
                        ) -> Query:
    start = series_start(bucket, buckets, now)
    index = dialect.floor_int("(ts - ?) / ?")
    fails = ", ".join("?" for _ in SUCCESS_CATEGORIES)
    extra, extra_params = _instance(instance)
    return (f"SELECT {index} AS b, COUNT(*), SUM(CASE WHEN category IN ({fails}) THEN 0 ELSE 1 END) "
            f"FROM hangups WHERE ts >= ? AND ts < ?{extra} GROUP BY b",
            [start, bucket, *SUCCESS_CATEGORIES, start, start + bucket * buckets, *extra_params])


def shape_series(bucket: int, buckets: int, now: float, records: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    start = series_start(bucket, buckets, now)
    found = {int(b): (int(total or 0), int(failed or 0)) for b, total, failed in records}
    out = []
    for i in range(buckets):
        total, failed = found.get(i, (0, 0))
        out.append({"t": start + i * bucket, "total": total, "failed": failed,
                    "rate": failed / total if total else 0.0})
    return out


UNKNOWN_DAYS = 30
"""The unknown-codes view covers this many days by default: it reads the per-day counts, never the rows."""


def unknown_codes(trunk: str | None = None, since: float | None = None, instance: str | None = None,
                  now: float | None = None) -> Query:
    """Codes read by class or by nothing, grouped with what they fell back to (for the starter catalog), from the
    per-day counts the store keeps as it writes (`unknown_seen`): bounded by the distinct codes, not the rows."""
    if since is None:
        since = (now if now is not None else 0.0) - UNKNOWN_DAYS * 86400
    where = ["day >= ?", "last_seen >= ?"]
    params: list[object] = [int(since // 86400), since]
    for column, value in (("trunk", trunk), ("instance", instance)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    group = "trunk, catalog, code, phrase, match_kind, matched, category, retry, texts_id"
    return (f"SELECT {group}, SUM(n), MAX(last_seen) FROM unknown_seen WHERE {' AND '.join(where)} GROUP BY {group}",
            params)


def shape_unknown(records: Sequence[Sequence[Any]], texts: Any = None) -> list[dict[str, Any]]:
    """One item per (trunk, catalog, code, phrase), most seen first; `texts(texts_id)` gives an answer's texts."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for (trunk, catalog, code, phrase, kind, matched, category, retry, texts_id, count, last) in records:
        trunk, catalog, code, phrase, kind, matched, category, retry = (
            v if v != "" else None for v in (trunk, catalog, code, phrase, kind, matched, category, retry))
        key = (trunk, catalog, code, phrase)
        item = merged.get(key)
        if item is None or int(count) > item["_best"]:
            previous = merged.get(key)
            item = {"trunk": trunk, "catalog": catalog, "code": code, "phrase": phrase, "match_kind": kind,
                    "matched": matched, "category": category, "retry": retry,
                    "texts": dict(texts(texts_id) if texts and texts_id else {}),
                    "count": previous["count"] if previous else 0,
                    "last_seen": previous["last_seen"] if previous else 0.0, "_best": int(count)}
            merged[key] = item
        item["count"] += int(count)
        item["last_seen"] = max(float(item["last_seen"]), float(last or 0.0))
    out = []
    for item in merged.values():
        item.pop("_best")
        out.append(item)
    return sorted(out, key=lambda i: (-i["count"], str(i["code"]), str(i["phrase"] or "")))


def older_than(cutoff: float) -> Query:
    """Whole hours only (the hour holding the cutoff stays): the quality rollup counts whole hours."""
    return "DELETE FROM hangups WHERE ts < ?", [cutoff // 3600 * 3600]


def unknown_older_than(cutoff: float) -> Query:
    return "DELETE FROM unknown_seen WHERE day < ?", [int(cutoff // 86400)]


def texts(ids: Sequence[str]) -> Query:
    return (f"SELECT texts_id, uk, ru, en FROM reason_texts WHERE texts_id IN ({', '.join('?' for _ in ids)})",
            list(ids))


def by_id_range(first: int, last: int, day: int) -> Query:
    """The rows one agent's commit announced (PostgreSQL's `day` prunes the partitions to read)."""
    return (f"SELECT id, {SELECT_COLUMNS} FROM hangups WHERE id BETWEEN ? AND ? AND day >= ? ORDER BY id",
            [first, last, day])


def ids_after(after: int, day: int) -> Query:
    """Ids above `after` (the polling fallback's look-back), cheap: the id index alone."""
    return "SELECT id FROM hangups WHERE id > ? AND day >= ?", [after, day]


def by_ids(ids: Sequence[int], day: int) -> Query:
    return (f"SELECT id, {SELECT_COLUMNS} FROM hangups WHERE id IN ({', '.join('?' for _ in ids)}) AND day >= ? "
            "ORDER BY id", [*ids, day])


def count(where: str = "", params: Sequence[Any] = ()) -> Query:
    return f"SELECT COUNT(*) FROM hangups{(' WHERE ' + where) if where else ''}", list(params)


__all__ = ["SUCCESS_CATEGORIES", "UNKNOWN_KINDS", "call", "count", "failure_rate_series", "older_than", "recent",
           "rows", "shape_series", "shape_unknown", "shape_window_counts", "unknown_codes", "window_counts"]
