"""The store at fleet size, and a fleet's live load, on a real PostgreSQL (a throwaway server on loopback unless
--url is given).

    python bench/bench_fleet.py store [--rows 10000000] [--days 7] [--repeat 20] [--spread]
                                      [--url URL [--fill-only | --no-fill]]
    python bench/bench_fleet.py load  [--agents 20] [--rate 5000] [--seconds 60] [--flush-ms 200] [--devtools]

`store` fills the store with generated annotations (20 agents, 40 trunks, a realistic mix of answers resolved by the
real catalogs; each answer's texts once in `reason_texts`), spread evenly over the last DAYS days up to now, then
times the console's own queries (the Store methods its API calls, and the trunk quality table the quality page
computes) and prints p50/p95, the bytes a row costs, and how long retention takes to drop the oldest day. With --url,
`--fill-only` fills (rows [--from-row, --to-row) of them, to split a long fill; the same --now each time) and
prints the run's `now`; `--no-fill` times an already filled database (its `now`: the newest
row's time, or --now) and keeps its oldest day, so one fill serves many timing runs.

`load` runs the fleet: AGENTS processes, each an agent's store path as `serve` runs it (a named bus, the batched
writer with the shipped flush interval unless --flush-ms, its own connection, uvloop; at a lower CPU priority since
each stands for an agent on its own host), publish RATE/AGENTS annotated hangups per second each for SECONDS seconds;
`pbx-codes console --store` runs as the central console; headless Chromium opens its event stream, on its own while
the agents write (--devtools: Playwright stays attached, and its DevTools session receives every message too).
Printed: rows stored against rows published (lost, duplicated), the live lag from each row's commit (the agent's
clock after COMMIT returned) to the event in the browser's EventSource (p50/p95/p99/max), the messages the browser
handled, and each part's CPU per row over the run's steady state (from /proc).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from pbx_codes.catalog import load_catalogs  # noqa: E402 - after the path set-up above
from pbx_codes.config import StoreSection  # noqa: E402
from pbx_codes.model import Observation, Outcome, Side  # noqa: E402
from pbx_codes.resolve import Resolver  # noqa: E402
from pbx_codes.store.schema import DAY, row_from_annotation  # noqa: E402

#: The answers of the generated mix: (share in %, SIP code, phrase, outcome, answered).
MIX = [(55, "200", None, Outcome.ANSWERED, True), (10, "486", "Busy Here", Outcome.CARRIER_FINAL, False),
       (8, "480", "Temporarily Unavailable", Outcome.RING_TIMEOUT, False),
       (5, "503", "Simultaneous calls limit reached", Outcome.CARRIER_FINAL, False),
       (3, "409", "Not enough money", Outcome.CARRIER_FINAL, False), (3, "404", "Not Found", Outcome.CARRIER_FINAL,
                                                                      False),
       (4, "487", "Request Terminated", Outcome.CALLER_CANCEL, False),
       (5, "502", "Bad Gateway", Outcome.CARRIER_FINAL, False),
       (2, "499", "Недостатньо коштів", Outcome.CARRIER_FINAL, False),  # no catalog knows it: an unknown code
       (3, "599", None, Outcome.CARRIER_FINAL, False), (2, "603", "Decline", Outcome.CARRIER_FINAL, False)]
AGENTS, TRUNKS = 20, 40
DATA_COLUMNS = ("pbx", "catalog", "code", "phrase", "provider_code", "method", "matched", "exact", "match_kind",
                "category", "retry", "fault", "hangup_by", "sip", "q850", "observed_q850", "dial_status",
                "original_lang", "outcome", "pbx_cause", "texts_id")


def resolver() -> Resolver:
    return Resolver(load_catalogs(), bindings={"lifecell": "lifecell"}, default_catalog="sip")


def answers(res: Resolver) -> list[tuple[int, int, dict[str, Any]]]:
    """(low, high, row) per answer of the mix: a generated row takes the answer whose [low, high) holds g % 100."""
    out, low = [], 0
    for share, code, phrase, outcome, _ in MIX:
        ann = res.resolve(Observation(sip_code=code, phrase=phrase, pbx="asterisk", hangup_by=Side.CARRIER,
                                      outcome=outcome, trunk="trunk-0", attempt=1, leg_id="x"))
        out.append((low, low + share, row_from_annotation(ann)))
        low += share
    assert low == 100
    return out


def _percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    def q(p: float) -> float:
        return values[min(len(values) - 1, round(p * (len(values) - 1)))]
    return {"p50": q(0.5), "p95": q(0.95), "p99": q(0.99), "max": values[-1]}


def server(url: str | None) -> tuple[str, Any]:
    if url:
        return url, None
    from conftest_postgres import LocalPostgres
    pg = LocalPostgres.launch()
    return pg.create_database(), pg


# ---- store: 10 million rows ----------------------------------------------------------------------------------

async def fill(url: str, rows: int, days: int, now: float, part: tuple[int, int] | None = None,
               spread: bool = False) -> None:
    """The generated rows (or only rows [part[0], part[1]) of them: a long fill split into several runs)."""
    import psycopg

    from pbx_codes.store import open_store

    res = resolver()
    mix = answers(res)
    lo, hi = part or (0, rows)
    store = await open_store(url, {"retention_days": None, "journal": ""})
    store.start()
    for _, _, row in (mix if lo == 0 else []):  # the answers' texts go in the way an agent writes them (reason_texts)
        store.add({**{k: v for k, v in row.items()}, "rid": None, "uniqueid": f"seed-{row['code']}", "ts": now - 10})
    await store.flush(timeout=60)
    await store.close()
    start, step = now - days * DAY, days * DAY / rows
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        # The generated days arrive all at once, as if live: the quality rollup's blocks are sealed after the fill
        # (as agents seal each block once it ends) instead of each row being counted into sealed blocks as a late
        # one, which is a backfill's path.
        await conn.execute("UPDATE quality_sealed SET until_hour = LEAST(until_hour, %s)", (int(start // 3600),))
        for day in range(int(start // DAY), int(now // DAY) + 1):
            from pbx_codes.store.schema import partition_name
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF hangups "
                               f"FOR VALUES FROM ({day}) TO ({day + 1})")
        await conn.execute("CREATE TEMP TABLE mix (lo INTEGER, hi INTEGER, "
                           + ", ".join(f"{c} {'INTEGER' if c in ('exact', 'q850', 'observed_q850') else 'TEXT'}"
                                       for c in DATA_COLUMNS) + ", answered BOOLEAN)")
        for (low, high, row), entry in zip(mix, MIX):
            await conn.execute(f"INSERT INTO mix VALUES (%s, %s, {', '.join('%s' for _ in DATA_COLUMNS)}, %s)",
                               [low, high, *(row[c] for c in DATA_COLUMNS), entry[4]])
        chunk = 500_000
        # the same delays on every leg (dial 30 s before the end, ringing 2 s later, answer 5 s before the end), or
        # with --spread, PDD 0.5-6.5 s, ringing 0-15 s and talk 1-600 s to the millisecond, varying leg by leg (as
        # real delays do: the delay histograms then hold about a bucket per leg)
        timings = ("t - CASE WHEN answered THEN talk ELSE 0 END - ring - pdd, "
                   "t - CASE WHEN answered THEN talk ELSE 0 END - ring, CASE WHEN answered THEN t - talk END"
                   if spread else "t - 30, t - 28, CASE WHEN answered THEN t - 25 END")
        for first in range(lo, hi, chunk):
            n = min(chunk, hi - first)
            t0 = time.perf_counter()
            await conn.execute(
                "INSERT INTO hangups (rid, ts, stored_at, linkedid, uniqueid, channel, trunk, number, attempt, "
                "started_at, progress_at, answered_at, ended_at, instance, day, "
                + ", ".join(DATA_COLUMNS) + ") "
                "SELECT md5('bench' || g), t, t, 'call-' || (g / 2), 'leg-' || g, "
                "'PJSIP/trunk-' || (g %% %(trunks)s) || '-' || g, 'trunk-' || (g %% %(trunks)s), "
                "'+38044' || lpad((g %% 10000000)::text, 7, '0'), 1, " + timings + ", t, "
                "'pbx-' || (g %% %(agents)s), floor(t / 86400)::int, "
                + ", ".join(f"m.{c}" for c in DATA_COLUMNS) + " "
                "FROM (SELECT g, %(start)s + g * %(step)s AS t, 0.5 + (g * 7907 %% 6000) / 1000.0 AS pdd, "
                "(g * 104729 %% 15000) / 1000.0 AS ring, 1 + (g * 15485863 %% 599000) / 1000.0 AS talk "
                "FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g) s "
                "JOIN mix m ON ((s.g * 7919) %% 100) >= m.lo AND ((s.g * 7919) %% 100) < m.hi",
                {"trunks": TRUNKS, "agents": AGENTS, "start": start, "step": step, "first": first,
                 "last": first + n - 1})
            print(f"  {first + n:>10,} rows ({n / (time.perf_counter() - t0):,.0f} rows/s)", flush=True)
        t0 = time.perf_counter()
        sealer = await open_store(url, {"retention_days": None, "journal": ""})
        await sealer.seal()
        await sealer.close()
        print(f"  quality rollup blocks sealed in {time.perf_counter() - t0:.1f} s", flush=True)
        await conn.execute("ANALYZE")


async def timed(label: str, repeat: int, fn: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    await fn()  # warm: the first call reads the pages in; the console answers many times, not once
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - t0) * 1000)
    p = _percentiles(times)
    print(f"  {label:<46} p50 {p['p50']:7.1f} ms  p95 {p['p95']:7.1f} ms")
    return {"query": label, "p50_ms": round(p["p50"], 1), "p95_ms": round(p["p95"], 1)}


async def measure(url: str, repeat: int, now: float, days: int, retire: bool = True,
                  only: str = "") -> dict[str, Any]:
    from pbx_codes.console.quality import preset_range
    from pbx_codes.quality.classes import load_table
    from pbx_codes.store import open_store
    from pbx_codes.store.quality_sql import (
        PERCENTILE_UNITS,
        QualityCache,
        same_measures,
        trunk_quality,
        trunk_quality_raw,
        within_a_bucket,
    )

    store = await open_store(url, {"retention_days": None, "journal": ""})
    table = load_table()
    count = await store.count()
    results = []
    sized = await store.backend.fetch(
        "SELECT SUM(pg_relation_size(c.oid)), SUM(pg_indexes_size(c.oid)) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'hangups'::regclass")
    heap, indexes = (int(v or 0) for v in sized[0])
    sample = await store.backend.fetch("SELECT AVG(pg_column_size(h.*)) FROM (SELECT * FROM hangups LIMIT 10000) h")
    texts = await store.backend.fetch("SELECT AVG(COALESCE(octet_length(uk), 0) + COALESCE(octet_length(ru), 0) + "
                                      "COALESCE(octet_length(en), 0)) FROM reason_texts")
    print(f"rows {count:,}; heap {heap / count:.0f} B/row, indexes {indexes / count:.0f} B/row; a row's tuple "
          f"{float(sample[0][0]):.0f} B; the texts it no longer copies: {float(texts[0][0]):.0f} B")
    await store.seal()  # the blocks that ended since the fill
    rollup = await store.backend.fetch("SELECT (SELECT COUNT(*) FROM quality_hourly), "
                                       "(SELECT COUNT(*) FROM quality_hourly_delay), "
                                       "(SELECT COUNT(*) FROM quality_span), (SELECT COUNT(*) FROM quality_span_delay)")
    print(f"rollup: hours {int(rollup[0][0]):,} count rows, {int(rollup[0][1]):,} delay histogram rows; 6-hour and "
          f"day blocks {int(rollup[0][2]):,} and {int(rollup[0][3]):,}")
    linkedid = (await store.recent(limit=1))[0]["linkedid"]

    async def stats(instance: str | None = None) -> None:
        await store.window_counts((60, 300, 900), now=now, instance=instance)
        await store.failure_rate_series(60, 15, now=now, instance=instance)

    async def quality(span: float) -> None:  # the table over exactly [now - span, now): blocks, hours, edges' rows
        await trunk_quality(store.backend, table, now - span, now)

    quality_cache = QualityCache()  # the console's own (`pbx_codes.console.quality.Warmer.cache`)

    async def console_quality(span: float, cold: str = "") -> None:  # /api/quality?range=: whole hours only
        if cold:  # the range's merge dropped, as when the hour has just turned (its units as stored still cached)
            quality_cache.ranges.clear()
        if cold == "all":  # nothing cached, as in a console just started: every unit read from the database
            quality_cache.units.clear()
        await trunk_quality(store.backend, table, *preset_range(span, now), cache=quality_cache)

    async def console_custom(span: float) -> None:  # /api/quality?from=&to=: exact, its edges' rows read each time
        quality_cache.ranges.clear()  # a range not asked before; its units as stored cached (the presets warmed them)
        await trunk_quality(store.backend, table, now - span, now, cache=quality_cache)

    async def quality_raw(span: float) -> None:  # the same table from every leg of the range, in SQL (before)
        await trunk_quality_raw(store.backend, table, now - span, now)

    plan: list[tuple[str, Callable[[], Awaitable[Any]], int]] = [
        ("/api/recent (newest 100)", lambda: store.recent(limit=100), repeat),
        ("/api/recent?trunk=", lambda: store.recent(limit=100, trunk="trunk-7"), repeat),
        ("/api/recent?instance=", lambda: store.recent(limit=100, instance="pbx-3"), repeat),
        ("/api/recent?category=billing", lambda: store.recent(limit=100, category="billing"), repeat),
        ("/api/recent?search= (last hour)", lambda: store.recent(limit=100, search="0000777"), max(3, repeat // 4)),
        ("/api/stats (1/5/15 min, 15 x 1 min rate)", stats, repeat),
        ("/api/stats?instance=", lambda: stats("pbx-5"), repeat),
        ("/api/unknown (30 days)", store.unknown_codes, repeat),
        ("/api/call/<id>", lambda: store.call(linkedid), repeat),
        ("trunk quality table, console's last hour", lambda: console_quality(3600), repeat),
        ("trunk quality table, console's last day", lambda: console_quality(DAY), repeat),
        ("trunk quality table, console's last week", lambda: console_quality(7 * DAY), repeat),
        ("trunk quality table, console's last hour, new hour", lambda: console_quality(3600, "range"), repeat),
        ("trunk quality table, console's last day, new hour", lambda: console_quality(DAY, "range"), repeat),
        ("trunk quality table, console's last week, new hour", lambda: console_quality(7 * DAY, "range"), repeat),
        ("trunk quality table, console's last hour, cold", lambda: console_quality(3600, "all"), repeat),
        ("trunk quality table, console's last day, cold", lambda: console_quality(DAY, "all"), repeat),
        ("trunk quality table, console's last week, cold", lambda: console_quality(7 * DAY, "all"), repeat),
        ("trunk quality table, console's custom range ending now, last hour", lambda: console_custom(3600), repeat),
        ("trunk quality table, console's custom range ending now, last day", lambda: console_custom(DAY), repeat),
        ("trunk quality table, console's custom range ending now, last week", lambda: console_custom(7 * DAY),
         repeat),
        ("trunk quality table, last hour", lambda: quality(3600), repeat),
        ("trunk quality table, last day", lambda: quality(DAY), repeat),
        ("trunk quality table, last week", lambda: quality(7 * DAY), repeat),
        ("trunk quality table, last hour, every leg (before)", lambda: quality_raw(3600), 3),
        ("trunk quality table, last day, every leg (before)", lambda: quality_raw(DAY), 1),
    ]
    for label, fn, n in plan:
        if only in label:
            results.append(await timed(label, n, fn))
    for name, (since, until) in (("last day", (now - DAY, now)), ("console's last day", preset_range(DAY, now))):
        rolled = await trunk_quality(store.backend, table, since, until)
        raw = await trunk_quality_raw(store.backend, table, since, until)
        moved = max((abs(a[k] - b[k]) for a, b in zip(rolled, raw) for k in _PERCENTILES
                     if a[k] is not None and b[k] is not None), default=0.0)
        same = same_measures([_without_percentiles(r) for r in rolled], [_without_percentiles(r) for r in raw])
        within = all(within_a_bucket(a[k], b[k], half) for a, b in zip(rolled, raw)
                     for k, half in PERCENTILE_UNITS.items())
        print(f"{name}: rollup table equals the one from every leg: {same}; percentiles at most {moved:g} apart "
              f"(ms; s for durations), all within half a bucket: {within}")
    if not retire:
        await store.close()
        return {"rows": count, "heap_bytes_per_row": round(heap / count),
                "index_bytes_per_row": round(indexes / count), "queries": results}
    oldest = int((now - days * DAY) // DAY)
    keep = (now - (oldest + 1) * DAY) / DAY  # a retention that ends exactly where the oldest day ends
    keeper = await open_store(url, {"retention_days": keep, "journal": ""})
    t0 = time.perf_counter()
    dropped = await keeper.purge(now=now)
    retire_ms = (time.perf_counter() - t0) * 1000
    after = await store.count()
    print(f"retention: {dropped} day(s) dropped ({count - after:,} rows) in {retire_ms:.1f} ms")
    await keeper.close()
    await store.close()
    return {"rows": count, "heap_bytes_per_row": round(heap / count), "index_bytes_per_row": round(indexes / count),
            "queries": results, "retention": {"days": dropped, "rows": count - after, "ms": round(retire_ms, 1)}}


_PERCENTILES = ("pdd_p50_ms", "pdd_p95_ms", "srd_p50_ms", "srd_p95_ms", "duration_p50_s", "duration_p95_s")


def _without_percentiles(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in _PERCENTILES}


async def newest(url: str) -> float:
    import psycopg
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SELECT MAX(ts) FROM hangups")
        row = await cur.fetchone()
    return float(row[0])


def cmd_store(args: argparse.Namespace) -> None:
    if (args.fill_only or args.no_fill) and not args.url:
        raise SystemExit("--fill-only and --no-fill need --url (a server kept between runs)")
    url, pg = server(args.url)
    try:
        if args.no_fill:
            now = args.now if args.now is not None else asyncio.run(newest(url))
        else:
            now = args.now if args.now is not None else time.time()
            t0 = time.perf_counter()
            part = (args.from_row, args.to_row or args.rows) if args.fill_only else None
            asyncio.run(fill(url, args.rows, args.days, now, part, args.spread))
            print(f"filled {args.rows:,} rows in {time.perf_counter() - t0:.0f} s; now = {now!r}")
            if args.fill_only:
                return
        out = asyncio.run(measure(url, args.repeat, now, args.days, retire=not args.no_fill, only=args.only))
        print(json.dumps(out))
    finally:
        if pg is not None:
            pg.cleanup()


# ---- load: 20 agents, one console, one browser ----------------------------------------------------------------

async def agent(url: str, name: str, rate: float, seconds: float, out: str, flush_ms: int) -> None:
    """One agent's store path at `rate` hangups/s; writes "uniqueid commit_time" per row committed."""
    from pbx_codes.sinks.bus import AnnotationBus
    from pbx_codes.store import open_store

    res = resolver()
    templates = [res.resolve(Observation(sip_code=code, phrase=phrase, pbx="asterisk", hangup_by=Side.CARRIER,
                                         outcome=outcome, attempt=1))
                 for share, code, phrase, outcome, _ in MIX for _ in range(share // 5 or 1)]
    bus = AnnotationBus(instance=name)
    store = await open_store(url, {"retention_days": None, "journal": "", "flush_ms": flush_ms})
    commits: list[str] = []
    insert = store.backend.insert

    async def timed_insert(rows: Any) -> int:
        added = await insert(rows)
        at = time.time()
        commits.extend(f"{r['uniqueid']} {at:.6f}" for r in rows)
        return added

    store.backend.insert = timed_insert  # type: ignore[method-assign]
    store.start(bus)
    total = int(rate * seconds)
    start = time.monotonic()
    i = 0
    while i < total:  # every 20 ms, the hangups due by then (as a PBX's events arrive: in small bursts)
        due = min(total, int((time.monotonic() - start) * rate) + 1)
        now = time.time()
        first = i
        for i in range(first, due):
            base = templates[i % len(templates)]
            bus.publish(replace(base, observation=replace(
                base.observation, leg_id=f"{name}-{i}", call_id=f"{name}-call-{i}", trunk=f"trunk-{i % TRUNKS}",
                channel=f"PJSIP/trunk-{i % TRUNKS}-{i:08x}", number=f"+38044{i:07d}", timestamp=now,
                started_at=now - 20, ended_at=now)))
        i = due
        await asyncio.sleep(0.02)
    try:
        await store.flush(timeout=600)
    finally:
        Path(out).write_text("\n".join(commits) + "\n")
        await store.close()


_WATCH = """() => new Promise((ready) => {
    window.arrived = new Map();
    window.messages = 0;
    const source = new EventSource('/events?batch=1');  // as the console page reads it
    source.addEventListener('hangups', (e) => {
        const at = Date.now() / 1000;
        window.messages += 1;
        for (const data of JSON.parse(e.data)) window.arrived.set(data.uniqueid, at);
    });
    source.onopen = () => ready(true);
})"""


async def browser_lag(console: str, expected: int, ready: asyncio.Future[None], writes_done: Awaitable[Any],
                      devtools: bool, grace: float = 60.0) -> tuple[dict[str, float], int]:
    """Headless Chromium on the console's origin with an EventSource on /events?batch=1 (as the page): each hangup's
    arrival time. Unless `devtools`, the browser runs on its own while the agents write, as an operator's does:
    Playwright sets the page up, lets go, and comes back once the writes are done (attached, its DevTools session
    receives every EventSource message too, which costs the machine ~30 µs a row between the browser and Playwright's
    driver)."""
    import os
    import socket

    from playwright.async_api import async_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    profile = tempfile.mkdtemp(prefix="pbx-fleet-chromium-")
    chromium = subprocess.Popen(["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
                                 f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
                                 f"--user-data-dir={profile}", "about:blank"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ})
    try:
        _wait_http(f"http://127.0.0.1:{port}/json/version", 30)
        async with async_playwright() as pw:
            browser = await pw.chromium.connect_over_cdp(f"http://127.0.0.1:{port}")
            page = browser.contexts[0].pages[0]
            await page.goto(console + "/api/health")
            await page.evaluate(_WATCH)
            if not devtools:
                await browser.close()  # over CDP: only disconnects; the page and its EventSource go on
            ready.set_result(None)
            await writes_done
            deadline = time.time() + grace
            if not devtools:
                browser = await pw.chromium.connect_over_cdp(f"http://127.0.0.1:{port}")
                page = next(p for c in browser.contexts for p in c.pages if p.url.endswith("/api/health"))
            while time.time() < deadline:
                if await page.evaluate("() => window.arrived.size") >= expected:
                    break
                await asyncio.sleep(1.0)
            arrived = await page.evaluate("() => Object.fromEntries(window.arrived)")
            messages = await page.evaluate("() => window.messages")
            await browser.close()
    finally:
        _stop(chromium)
    return arrived, messages


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End a process the run started: politely, then for good."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class CpuMeter:
    """CPU seconds (user + system, from /proc) of the run's parts, sampled every second: `steady` gives each part's
    use over a window of the run (the agents' start-up, the ramp and the drain left out)."""

    def __init__(self, agents: Callable[[], set[int]], console: int) -> None:
        import threading
        self._agents, self._console = agents, console
        self._first: dict[int, tuple[str, float]] = {}
        self._last: dict[int, float] = {}
        self.timeline: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _part(self, pid: int, cmdline: bytes, agents: set[int]) -> str | None:
        if pid == self._console:
            return "console"
        if pid in agents:
            return "agents"
        if cmdline.startswith(b"postgres"):
            return "postgres"
        program = cmdline.split(b"\0", 1)[0].split(b" ", 1)[0]  # Chromium's children rewrite theirs, with spaces
        if b"chrom" in program:
            kind = cmdline.partition(b"--type=")[2].replace(b"\0", b" ").split(b" ", 1)[0] or b"browser"
            return "chromium " + kind.decode(errors="replace")
        if b"playwright" in cmdline:
            return "playwright driver"
        return None

    def sample(self) -> None:
        import os
        tick = os.sysconf("SC_CLK_TCK")
        agents = self._agents()
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    part = self._part(pid, f.read(), agents)
                if part is None:
                    continue
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            used = (int(fields[11]) + int(fields[12])) / tick
            self._first.setdefault(pid, (part, used))
            self._last[pid] = used
        totals: dict[str, float] = {}
        for pid, (part, first) in self._first.items():
            totals[part] = totals.get(part, 0.0) + self._last[pid] - first
        self.timeline.append((time.time(), totals))

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.sample()

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def steady(self, start: float, end: float) -> tuple[float, dict[str, float]]:
        """(seconds, CPU seconds per part) between the samples nearest `start` and `end`."""
        first = min(self.timeline, key=lambda s: abs(s[0] - start))
        last = min(self.timeline, key=lambda s: abs(s[0] - end))
        return last[0] - first[0], {k: v - first[1].get(k, 0.0) for k, v in last[1].items()}


def cmd_load(args: argparse.Namespace) -> None:
    import socket

    url, pg = server(args.url)
    work = Path(tempfile.mkdtemp(prefix="pbx-fleet-load-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        asyncio.run(_migrate(url))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        console = subprocess.Popen([sys.executable, "-m", "pbx_codes", "console", "--store", url, "--listen",
                                    f"127.0.0.1:{port}"], cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=open(work / "console.log", "wb"))  # noqa: SIM115 - the child's, for its life
        procs.append(console)
        _wait_http(f"http://127.0.0.1:{port}/healthz", 30)
        expected = int(args.rate * args.seconds)
        per_agent = args.rate / args.agents

        meter = CpuMeter(lambda: {p.pid for p in procs[1:]}, console.pid)
        began: list[float] = []

        async def run() -> tuple[dict[str, float], int]:
            loop = asyncio.get_running_loop()
            ready: asyncio.Future[None] = loop.create_future()
            agents_done: asyncio.Future[None] = loop.create_future()
            watcher = asyncio.create_task(browser_lag(f"http://127.0.0.1:{port}", expected, ready, agents_done,
                                                      args.devtools))
            await asyncio.wait([ready, watcher], return_when=asyncio.FIRST_COMPLETED)  # connected before the first
            if watcher.done():
                return await watcher  # it failed: say why
            await asyncio.sleep(3)  # the machine settles after the browser's start (a pause, not a condition)
            meter.start()
            began.append(time.time())
            for n in range(args.agents):
                procs.append(subprocess.Popen(  # at a lower CPU priority: each stands for an agent on its own host
                    ["nice", "-n", "10", sys.executable, __file__, "agent", "--url", url, "--name", f"pbx-{n:02d}",
                     "--rate", str(per_agent), "--seconds", str(args.seconds), "--out", str(work / f"agent-{n}.txt"),
                     "--flush-ms", str(args.flush_ms)], cwd=ROOT))
            for proc in procs[1:]:
                await asyncio.to_thread(proc.wait, 900)
            agents_done.set_result(None)
            return await watcher

        t0 = time.time()
        arrived, messages = asyncio.run(run())
        for proc in procs[1:]:
            proc.wait(timeout=900)
        elapsed = time.time() - t0
        meter.stop()
        # The steady state: from 15 s after the agents started (all up, writing) to 5 s before their writes end (a
        # short run: its middle half).
        window, used = meter.steady(began[0] + min(15.0, args.seconds / 4), began[0] + args.seconds
                                    - min(5.0, args.seconds / 4))
        commits: dict[str, float] = {}
        for n in range(args.agents):
            path = work / f"agent-{n}.txt"
            for line in (path.read_text().split("\n") if path.exists() else []):
                if line:
                    leg, at = line.split()
                    commits[leg] = float(at)
        stored, distinct = asyncio.run(_counts(url))
        lags = [arrived[leg] - at for leg, at in commits.items() if leg in arrived]
        p = _percentiles(lags) if lags else {}
        out = {"agents": args.agents, "rate": args.rate, "seconds": args.seconds, "published": expected,
               "committed": len(commits), "stored": stored, "lost": expected - distinct,
               "duplicated": stored - distinct, "in_browser": len(arrived), "browser_messages": messages,
               "lag_ms": {k: round(v * 1000, 1) for k, v in p.items()}, "wall_s": round(elapsed, 1),
               "flush_ms": args.flush_ms,
               "steady_cpu_us_per_row": {k: round(v / (window * args.rate) * 1e6, 1) for k, v in sorted(used.items())
                                         if v > 0} if window > 0 else {},
               "steady_cpu_cores": round(sum(used.values()) / window, 2) if window > 0 else None}
        print(json.dumps(out))
    finally:
        for proc in procs:
            _stop(proc)
        if pg is not None:
            pg.cleanup()


async def _migrate(url: str) -> None:
    from pbx_codes.store import open_store
    store = await open_store(url, {"retention_days": None, "journal": ""})
    await store.close()


async def _counts(url: str) -> tuple[int, int]:
    import psycopg
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SELECT COUNT(*), COUNT(DISTINCT uniqueid) FROM hangups")
        stored, distinct = await cur.fetchone()
    return int(stored), int(distinct)


def _wait_http(url: str, limit: float) -> None:
    import urllib.request
    end = time.time() + limit
    while time.time() < end:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {limit} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("store")
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--url")
    p.add_argument("--now", type=float, help="the fill's and the timings' now (default: the clock, or the newest row)")
    p.add_argument("--fill-only", action="store_true", help="fill, print now, time nothing")
    p.add_argument("--from-row", type=int, default=0, help="with --fill-only: the first generated row to write")
    p.add_argument("--to-row", type=int, default=0, help="with --fill-only: the row to stop before")
    p.add_argument("--no-fill", action="store_true", help="time the rows already there; keep them all")
    p.add_argument("--spread", action="store_true", help="delays that vary leg by leg (default: the same on every leg)")
    p.add_argument("--only", default="", help="time only the queries whose label holds this text")
    p = sub.add_parser("load")
    p.add_argument("--agents", type=int, default=20)
    p.add_argument("--rate", type=float, default=5000)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--flush-ms", type=int, default=StoreSection().flush_ms,
                   help="the agents' longest wait before a partial batch is written (default: the shipped one)")
    p.add_argument("--devtools", action="store_true",
                   help="keep Playwright attached to the browser during the run (as before; costs the machine more)")
    p.add_argument("--url")
    p = sub.add_parser("agent")
    p.add_argument("--url", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--flush-ms", type=int, required=True)
    args = parser.parse_args()
    if args.mode == "store":
        cmd_store(args)
    elif args.mode == "load":
        cmd_load(args)
    else:
        from pbx_codes.cli.common import loop_factory
        with asyncio.Runner(loop_factory=loop_factory()) as runner:  # as `pbx-codes serve` runs
            runner.run(agent(args.url, args.name, args.rate, args.seconds, args.out, args.flush_ms))


if __name__ == "__main__":
    main()
