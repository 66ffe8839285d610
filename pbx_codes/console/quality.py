"""The console's trunk quality view: a table per trunk over a chosen range, a chart per trunk over time, and the
drill-down from a trunk to its failure causes to the calls. Read from the store (or the in-memory view) through
`pbx_codes.quality`, so the page, `pbx-codes report` and /metrics compute the same measures the same way."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from pbx_codes.quality.classes import ClassTable
from pbx_codes.quality.legs import Leg
from pbx_codes.quality.measures import TrunkQuality, per_trunk
from pbx_codes.quality.source import legs_in_range

RANGES = {"1h": 3600, "1d": 86400, "1w": 604800}
HOUR = 3600
#: Chart buckets per range: about 12-28 points.
_BUCKETS = {3600: 300, 86400: 3600, 604800: 21600}
MAX_CALLS = 200
log = logging.getLogger(__name__)
TABLE = web.AppKey("quality_table", ClassTable)


def _when(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name}: ISO time or epoch seconds") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def preset_range(span: float, now: float) -> tuple[float, float]:
    """A preset range (`RANGES`) ending now: from the start of the hour `span` before now ("since 17:00" for the
    last day at 17:40), so that the trunk quality table reads only whole hours of the store's rollup (the current
    hour's too, as nothing lies after now) and no rows: it spans `span` plus the minutes since the hour began."""
    return (now - span) // HOUR * HOUR, now + 1e-6


def chosen_range(request: web.Request, now: float | None = None) -> tuple[float, float]:
    """``range=1h|1d|1w`` (default 1d) ending now and starting on the hour (`preset_range`), or ``from``/``to``
    (exactly as given)."""
    q = request.query
    now = time.time() if now is None else now
    if q.get("from") or q.get("to"):
        since = _when(q.get("from", ""), "from") if q.get("from") else now - RANGES["1d"]
        until = _when(q.get("to", ""), "to") if q.get("to") else now
        if since >= until or until - since > 366 * 86400:
            raise web.HTTPBadRequest(text="from must be before to, at most a year apart")
        return since, until
    span = RANGES.get(q.get("range", "1d"))
    if span is None:
        raise web.HTTPBadRequest(text=f"range must be one of {', '.join(RANGES)}")
    return preset_range(span, now)


def _bucket(since: float, until: float) -> int:
    span = until - since
    for limit, size in sorted(_BUCKETS.items()):
        if span <= limit + HOUR:  # a preset range is its length plus the minutes since its first hour began
            return size
    return max(3600, int(span / 24) // 3600 * 3600)


def _scope(request: web.Request) -> dict[str, str | None]:
    return {k: (request.query.get(k, "").strip() or None) for k in ("pbx", "trunk", "instance")}


async def _legs(request: web.Request, **extra: Any) -> tuple[list[Leg], float, float]:
    from pbx_codes.console.app import STORE  # the app's own key (no import cycle at module load)

    since, until = chosen_range(request)
    scope = _scope(request)
    legs = await legs_in_range(request.app[STORE], since, until, trunk=scope["trunk"], instance=scope["instance"],
                               **extra)
    if scope["pbx"]:
        legs = [leg for leg in legs if leg.pbx == scope["pbx"]]
    return legs, since, until


def _rollup_backend(store: Any) -> Any:
    """The store's database backend when it keeps the hourly rollup (SQLite, PostgreSQL), else None."""
    backend = getattr(store, "backend", None)
    return backend if getattr(getattr(backend, "dialect", None), "name", "") in ("postgresql", "sqlite") else None


async def api_quality(request: web.Request) -> web.Response:
    """/api/quality: one row per trunk (seizures, ASR, NER, SER, SEER, ISA, PDD, SRD, ACD, classes, top failures)."""
    from pbx_codes.console.app import STORE

    request.app[WARMER].asked = time.monotonic()
    backend = _rollup_backend(request.app[STORE])
    if backend is not None:  # the hourly rollup
        from pbx_codes.store.quality_sql import trunk_quality

        since, until = chosen_range(request)
        items = await trunk_quality(backend, request.app[TABLE], since, until, cache=request.app[WARMER].cache,
                                    **_scope(request))
        return _json({"from": since, "to": until, "since_hour": _since_hour(request), "items": items})
    legs, since, until = await _legs(request)
    return _json({"from": since, "to": until, "since_hour": _since_hour(request),
                  "items": per_trunk(legs, request.app[TABLE])})


def _since_hour(request: web.Request) -> bool:
    """Whether the range is a preset one, which starts on the hour before its length (`preset_range`)."""
    return not (request.query.get("from") or request.query.get("to"))


async def api_quality_series(request: web.Request) -> web.Response:
    """/api/quality/series?trunk=...: the trunk's measures per time bucket over the range, oldest first."""
    legs, since, until = await _legs(request)
    size = _bucket(since, until)
    first = int(since // size * size)
    groups: dict[int, TrunkQuality] = {}
    table = request.app[TABLE]
    for leg in legs:
        if leg.seizure:
            start = int(leg.ts // size * size)
            groups.setdefault(start, TrunkQuality(table, leg.pbx, leg.trunk)).add(leg)
    points = []
    for start in range(first, int(until) + 1, size):
        group = groups.get(start)
        result = group.result() if group else TrunkQuality(table).result()
        points.append({"t": start, **{k: result[k] for k in ("seizures", "answered", "asr", "ner", "seer", "isa",
                                                               "pdd_p95_ms", "acd_s")}})
    return _json({"from": since, "to": until, "bucket": size, "points": points})


async def api_quality_causes(request: web.Request) -> web.Response:
    """/api/quality/causes?trunk=...: the trunk's failed seizures by category, code and carrier phrase."""
    legs, since, until = await _legs(request)
    table = request.app[TABLE]
    counts: dict[tuple[str, str, str], int] = {}
    total = 0
    for leg in legs:
        if not leg.seizure:
            continue
        total += 1
        if not leg.answered:
            key = (leg.category, leg.code or leg.sip or "", leg.phrase or "")
            counts[key] = counts.get(key, 0) + 1
    items = [{"category": c, "class": table.classify(c).name, "ner": table.classify(c).ner, "code": code or None,
              "phrase": phrase or None, "count": n, "share": n / total if total else 0.0}
             for (c, code, phrase), n in sorted(counts.items(), key=lambda i: (-i[1], i[0]))]
    return _json({"from": since, "to": until, "seizures": total, "items": items})


_CODE = re.compile(r"^[0-9A-Za-z/_.-]{1,16}$")


def _rounded(value: float | None, scale: float) -> float | None:
    return None if value is None else round(value * scale, 3)


async def api_quality_calls(request: web.Request) -> web.Response:
    """/api/quality/calls?trunk=&category=&code=: the seizures behind one cause, newest first (at most 200)."""
    category = request.query.get("category", "").strip() or None
    code = request.query.get("code", "").strip() or None
    if code is not None and not _CODE.match(code):
        raise web.HTTPBadRequest(text="code: a code as the table shows it")
    legs, since, until = await _legs(request, category=category)
    chosen = [leg for leg in legs if leg.seizure and (code is None or (leg.code or leg.sip) == code)]
    chosen.sort(key=lambda leg: -leg.ts)
    items = [{"time": leg.ts, "pbx": leg.pbx, "trunk": leg.trunk, "linkedid": leg.call_id, "uniqueid": leg.leg_id,
              "category": leg.category, "code": leg.code, "phrase": leg.phrase,
              "pdd_ms": _rounded(leg.pdd(), 1000), "duration_s": _rounded(leg.duration(), 1)}
             for leg in chosen[:MAX_CALLS]]
    return _json({"from": since, "to": until, "total": len(chosen), "items": items})


async def quality_page(request: web.Request) -> web.Response:
    from importlib import resources

    text = resources.files("pbx_codes.console").joinpath("templates/quality.html").read_text("utf-8")
    return web.Response(text=text, content_type="text/html", charset="utf-8", headers={"Cache-Control": "no-store"})


def _json(data: Any) -> web.Response:
    import json

    return web.json_response(data, dumps=lambda obj: json.dumps(obj, ensure_ascii=False, default=str))


class Warmer:
    """Owns the console's trunk quality cache (`pbx_codes.store.quality_sql.QualityCache`) and keeps it warm for
    the page's preset ranges: the three tables are read once when the console starts, then once a minute while the
    page is in use (for an hour after the last /api/quality). Each read takes ~30-50 ms from the cache; the merge of
    a range's settled hours and blocks, a few hundred ms at 10 M rows, is then paid here (at the start, when the
    hour turns, after a late row), not by the person waiting for the page."""

    EVERY = 60.0
    WHILE_USED = 3600.0

    def __init__(self) -> None:
        from pbx_codes.store.quality_sql import QualityCache

        self.asked = -math.inf
        self.cache = QualityCache()  # the console's, shared by /api/quality and this warmer
        self._task: asyncio.Task[None] | None = None

    async def run(self, backend: Any, table: ClassTable) -> None:
        from pbx_codes.store.quality_sql import trunk_quality

        starting = True  # the first round runs anyway: the page's first answer after a start is then warm too
        while True:
            if starting or time.monotonic() - self.asked < self.WHILE_USED:
                starting = False
                for span in RANGES.values():
                    try:
                        await trunk_quality(backend, table, *preset_range(span, time.time()), cache=self.cache)
                    except Exception as exc:  # the store unavailable for now: the next round tries again
                        log.debug("warming the trunk quality table: %s", exc)
                        break
            await asyncio.sleep(self.EVERY)

    async def context(self, app: web.Application) -> AsyncIterator[None]:
        from pbx_codes.console.app import STORE

        backend = _rollup_backend(app[STORE])
        if backend is not None:
            self._task = asyncio.create_task(self.run(backend, app[TABLE]), name="pbx-codes-quality-warmer")
        yield
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


WARMER = web.AppKey("quality_warmer", Warmer)


def add_quality_routes(app: web.Application, table: ClassTable) -> None:
    app[TABLE] = table
    app[WARMER] = Warmer()
    app.cleanup_ctx.append(app[WARMER].context)
    app.router.add_get("/quality", quality_page)
    app.router.add_get("/api/quality", api_quality)
    app.router.add_get("/api/quality/series", api_quality_series)
    app.router.add_get("/api/quality/causes", api_quality_causes)
    app.router.add_get("/api/quality/calls", api_quality_calls)


__all__ = ["RANGES", "add_quality_routes", "chosen_range", "preset_range"]
