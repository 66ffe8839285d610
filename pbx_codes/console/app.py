"""The console's HTTP application: the page, the live event stream, the JSON API, metrics and health.

Everything the page shows comes from the JSON API and the event stream, so `pbx-codes tail`/`stats` and any script
see exactly what an operator sees. Every reply passes through the access check and carries the security headers.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from pbx_codes.console.auth import access_middleware, add_security_headers
from pbx_codes.console.events import hangup_event
from pbx_codes.console.feed import WRITE_GAP, FeedHub, encode_events, take_queued
from pbx_codes.console.memory_store import MemoryStore
from pbx_codes.console.ports import AlertSource, ConsoleStore, MetricsRenderer
from pbx_codes.console.quality import add_quality_routes
from pbx_codes.console.settings import ConsoleSettings, parse_console_settings
from pbx_codes.model import LANGS, Category
from pbx_codes.quality.classes import load_table
from pbx_codes.sinks.bus import AnnotationBus
from pbx_codes.status import Health
from pbx_codes.timeouts import within

log = logging.getLogger("pbx_codes.console")

WINDOWS = (60, 300, 900)
KEEPALIVE_SECONDS = 15.0
MAX_LIMIT = 1000
STATIC_DIR = Path(__file__).with_name("static")
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"

HUB = web.AppKey("hub", FeedHub)
STORE = web.AppKey("store", object)
METRICS: web.AppKey[MetricsRenderer | None] = web.AppKey("metrics")
HEALTH: web.AppKey[Health | None] = web.AppKey("health")
SETTINGS = web.AppKey("settings", ConsoleSettings)
PAGE = web.AppKey("page", str)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda obj: json.dumps(obj, ensure_ascii=False, default=str))


def _filters(request: web.Request) -> dict[str, Any]:
    q = request.query
    try:
        limit = max(1, min(MAX_LIMIT, int(q.get("limit", "100"))))
    except ValueError:
        raise web.HTTPBadRequest(text="limit must be an integer") from None
    filters: dict[str, Any] = {"limit": limit}
    for key in ("instance", "pbx", "trunk", "category", "code", "search"):
        value = q.get(key, "").strip()
        if value:
            filters[key] = value
    return filters


def stats_payload(counts: Mapping[str, Any], series: Any, windows: tuple[int, ...] = WINDOWS) -> dict[str, Any]:
    """/api/stats: counts per window for every trunk and category, and the failure-rate points."""
    return {
        "windows": [w // 60 for w in windows],
        "total": list(counts.get("total", [0] * len(windows))),
        "by_trunk": {str(k): list(v) for k, v in dict(counts.get("by_trunk", {})).items()},
        "by_category": {str(k): list(v) for k, v in dict(counts.get("by_category", {})).items()},
        "failure_rate": [dict(p) for p in series],
    }


def render_page(settings: ConsoleSettings) -> str:
    """The page's HTML with the few values that are not data (language, categories) filled in."""
    template = Template(resources.files("pbx_codes.console").joinpath("templates/index.html").read_text("utf-8"))
    lang_options = "".join(f'<option value="{lang}"{" selected" if lang == settings.language else ""}>'
                           f"{lang}</option>" for lang in LANGS)
    category_options = "".join(f'<option value="{c.value}">{c.value}</option>' for c in Category)
    return template.substitute(lang=settings.language, lang_options=lang_options,
                               category_options=category_options)


async def page(request: web.Request) -> web.Response:
    return web.Response(text=request.app[PAGE], content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: `hangup` and `alert`, JSON data, a comment line as keep-alive. With `batch=1`, runs of
    hangups come as `hangups` messages carrying a list (what the page asks for)."""
    hub = request.app[HUB]
    only = request.query.get("instance", "").strip() or None
    batched = request.query.get("batch", "") == "1"
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                           "Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    await response.prepare(request)
    client = hub.connect(instance=only)
    loop = asyncio.get_running_loop()
    written = float("-inf")  # the first write goes at once
    try:
        await response.write(b": connected\n\n")
        while True:
            try:
                item = await within(client.queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            pause = written + WRITE_GAP - loop.time()
            if pause > 0 and item is not None:  # pacing the writes (see WRITE_GAP), not waiting for a condition
                await asyncio.sleep(pause)
            items, closing = take_queued(client, item)
            if items:
                written = loop.time()
                await response.write(encode_events(items, batched))
            if closing:
                break
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        hub.disconnect(client)
    return response


def _store(request: web.Request) -> ConsoleStore:
    return request.app[STORE]  # type: ignore[return-value]


async def api_recent(request: web.Request) -> web.Response:
    rows = await _store(request).recent(**_filters(request))
    show = request.app[SETTINGS].show_numbers
    return _json({"items": [hangup_event(r, show) for r in rows]})


async def api_call(request: web.Request) -> web.Response:
    linkedid = request.match_info["linkedid"]
    rows = await _store(request).call(linkedid)
    if not rows:
        return _json({"error": "no such call", "linkedid": linkedid}, status=404)
    show = request.app[SETTINGS].show_numbers
    return _json({"linkedid": linkedid, "legs": [hangup_event(r, show) for r in rows]})


def _instance(request: web.Request) -> dict[str, str]:
    """`?instance=NAME`: one agent of the fleet; absent, every agent."""
    name = request.query.get("instance", "").strip()
    return {"instance": name} if name else {}


async def api_stats(request: web.Request) -> web.Response:
    store, now, only = _store(request), time.time(), _instance(request)
    counts = await store.window_counts(WINDOWS, now=now, **only)
    series = await store.failure_rate_series(60, 15, now=now, **only)
    return _json(stats_payload(counts, series))


async def api_unknown(request: web.Request) -> web.Response:
    items = await _store(request).unknown_codes(**_instance(request))
    return _json({"items": [dict(i) for i in items]})


async def api_unknown_export(request: web.Request) -> web.Response:
    trunk = request.query.get("trunk", "").strip() or None
    text = await _store(request).export_unknown(trunk)
    name = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in (trunk or "unknown-codes"))
    return web.Response(text=text, content_type="application/toml", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.toml"'})


async def api_alerts(request: web.Request) -> web.Response:
    return _json({"items": list(request.app[HUB].alerts)})


async def metrics_endpoint(request: web.Request) -> web.Response:
    renderer = request.app[METRICS]
    if renderer is None:
        return web.Response(status=404, text="metrics are not configured\n")
    body = renderer.render()
    return web.Response(body=body, headers={"Content-Type": PROMETHEUS_TYPE})


async def api_health(request: web.Request) -> web.Response:
    """/api/health: each part's state (PBX connections, store, webhook, FastAGI), what the page's header shows."""
    health = request.app[HEALTH]
    return _json({"parts": health.snapshot() if health is not None else []})


@web.middleware
async def store_unavailable(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The store's queries fail while its database is away: answer 503 at once instead of a 500 and a traceback;
    the page, the feed, /metrics and /api/health keep working."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as exc:
        if not request.path.startswith("/api/"):
            raise
        log.debug("console %s: store unavailable: %s", request.path, type(exc).__name__)
        return _json({"error": "store unavailable"}, status=503)


async def healthz(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    return _json({"status": "ok", "streams": len(hub.clients), "published": hub.bus.published})


async def no_icon(request: web.Request) -> web.Response:
    """Browsers ask for it; an empty answer keeps a 404 out of their console."""
    return web.Response(status=204)


def create_app(bus: AnnotationBus, store: ConsoleStore | None = None, metrics: MetricsRenderer | None = None,
               alerts: AlertSource | None = None, config: ConsoleSettings | Mapping[str, Any] | None = None,
               health: Health | None = None) -> web.Application:
    """The console application. `store` None: the last `history` hangups are kept in memory instead."""
    settings = config if isinstance(config, ConsoleSettings) else parse_console_settings(config)
    memory = None
    if store is None:
        memory = store = MemoryStore(settings.history)
    hub = FeedHub(bus, show_numbers=settings.show_numbers, memory=memory)
    app = web.Application(middlewares=[access_middleware(settings), store_unavailable])
    app[HUB], app[STORE], app[METRICS], app[SETTINGS], app[HEALTH] = hub, store, metrics, settings, health
    app[PAGE] = render_page(settings)
    if alerts is not None:
        alerts.add_listener(hub.on_alert)

    async def start_feed(_: web.Application) -> None:
        hub.start()

    async def stop_feed(_: web.Application) -> None:
        await hub.close()

    app.on_startup.append(start_feed)
    app.on_shutdown.append(stop_feed)
    app.on_response_prepare.append(add_security_headers)
    app.router.add_get("/", page)
    app.router.add_get("/events", events)
    app.router.add_get("/api/recent", api_recent)
    app.router.add_get("/api/call/{linkedid}", api_call)
    app.router.add_get("/api/stats", api_stats)
    app.router.add_get("/api/unknown", api_unknown)
    app.router.add_get("/api/unknown/export", api_unknown_export)
    app.router.add_get("/api/alerts", api_alerts)
    add_quality_routes(app, getattr(metrics, "quality", None) or load_table())
    app.router.add_get("/metrics", metrics_endpoint)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/health", api_health)
    app.router.add_get("/favicon.ico", no_icon)
    app.router.add_static("/static/", STATIC_DIR, show_index=False)
    return app


__all__ = ["create_app", "render_page", "stats_payload"]
