"""Sustained annotated hangups per second into the store, on SQLite and on PostgreSQL.

Annotations are published on the bus in bursts, as listeners do, and the clock stops when the last one is committed.
Reported as a ratio to a baseline measured in the same run: the same rows written straight through the backend in
batches of the same size (no bus, no writer task), i.e. what the database alone can take. Also printed: the longest
the event loop was kept from running a 5 ms ticker during the burst (the writer must not stall listeners).

    python bench/bench_store.py [--rows 50000] [--batch 500] [--postgres postgresql://user@127.0.0.1:5432/db]
                                [--seizures]

--seizures makes every hangup a trunk seizure with its timings (an attempt number, dial/ringing/answer/end times),
so the trunk quality rollup's triggers count each row: the writer's cost with the rollup kept.

Without --postgres a throwaway PostgreSQL is started on loopback when the server binaries are installed.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pbx_codes.catalog import load_catalogs
from pbx_codes.model import Annotation, Observation, Side
from pbx_codes.resolve import Resolver
from pbx_codes.sinks.bus import AnnotationBus
from pbx_codes.store import open_store
from pbx_codes.store.schema import row_from_annotation
from pbx_codes.store.store import make_backend

CAUSES = [("503", "Simultaneous calls limit reached"), ("486", "Busy Here"), ("409", "Not enough money"),
          ("480", "Temporarily Unavailable"), ("499", "Недостатньо коштів"), ("404", "Not found")]


def annotations(resolver: Resolver, count: int, seizures: bool = False) -> list[Annotation]:
    now = time.time()
    out = []
    for i in range(count):
        code, phrase = CAUSES[i % len(CAUSES)]
        end = now + i * 1e-3
        timings = {"attempt": 1, "started_at": end - 9.0 - (i % 997) * 1e-3, "progress_at": end - 7.0 + (i % 89) * 1e-3,
                   "ended_at": end} if seizures else {}
        out.append(resolver.resolve(Observation(
            sip_code=code, phrase=phrase, trunk=("lifecell-trunk", "gw-mango", "other")[i % 3],
            pbx=("asterisk", "freeswitch")[i % 2], call_id=f"{1_700_000_000 + i // 2}.{i}", leg_id=f"leg-{i}",
            number=f"+38044{i:07d}", hangup_by=Side.CARRIER, timestamp=end, **timings)))
    return out


async def baseline(url: str, anns: list[Annotation], batch: int) -> float:
    backend = make_backend(url)
    await backend.ensure()
    rows = [row_from_annotation(a) for a in anns]
    start = time.perf_counter()
    for i in range(0, len(rows), batch):
        await backend.insert(rows[i:i + batch])
    elapsed = time.perf_counter() - start
    await backend.close()
    return len(rows) / elapsed


async def through_store(url: str, anns: list[Annotation], batch: int, journal: str) -> tuple[float, float]:
    bus = AnnotationBus()
    store = await open_store(url, {"batch_size": batch, "flush_ms": 100, "journal": journal,
                                   "retention_days": None, "queue_size": len(anns) + 1})
    store.start(bus)
    stall = 0.0

    async def ticker() -> None:
        nonlocal stall
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.005)
            stall = max(stall, loop.time() - before - 0.005)

    tick = asyncio.create_task(ticker())
    start = time.perf_counter()
    for i in range(0, len(anns), 1000):
        for ann in anns[i:i + 1000]:
            bus.publish(ann)
        await asyncio.sleep(0)
    await store.flush(timeout=600)
    elapsed = time.perf_counter() - start
    tick.cancel()
    written = await store.count()
    await store.close()
    assert written == len(anns), f"{written} rows stored of {len(anns)}"
    return len(anns) / elapsed, stall


async def measure(name: str, url_for, anns: list[Annotation], batch: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = await baseline(url_for("base", tmp), anns, batch)
        rate, stall = await through_store(url_for("store", tmp), anns, batch, str(Path(tmp) / "journal.jsonl"))
    print(f"{name:<11} store {rate:>9,.0f} hangups/s   baseline (direct batches) {base:>9,.0f} rows/s   "
          f"ratio {rate / base:.2f}   longest loop stall {stall * 1000:.1f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL database to write into (tables are created)")
    parser.add_argument("--seizures", action="store_true", help="trunk seizures with timings (the rollup counts them)")
    args = parser.parse_args()
    anns = annotations(Resolver(load_catalogs(), bindings={"lifecell-trunk": "lifecell", "gw-mango": "mango"}),
                       args.rows, args.seizures)
    print(f"{args.rows} annotated hangups{' (trunk seizures with timings)' if args.seizures else ''}, batches of "
          f"{args.batch}")
    await measure("SQLite", lambda tag, tmp: f"sqlite://{tmp}/{tag}.db", anns, args.batch)

    server = None
    if args.postgres:
        await measure("PostgreSQL", lambda tag, tmp: args.postgres, anns, args.batch)
        return
    try:
        from tests.conftest_postgres import LocalPostgres
        server = LocalPostgres.launch()
    except Exception as exc:
        print(f"PostgreSQL  skipped: {exc}")
        return
    try:
        urls = {tag: server.create_database() for tag in ("base", "store")}
        await measure("PostgreSQL", lambda tag, tmp: urls[tag], anns, args.batch)
    finally:
        server.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
