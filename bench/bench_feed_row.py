"""The cost of one hangup on a fleet's live path, step by step, against the generic way of doing the same step
(timed in the same process): on an agent, the bus stamping its instance and the row the store writes; on the central
console, the stored record back to a dict, the annotation rebuilt for its bus, the feed event and its share of a
batched `hangups` message.

    python bench/bench_feed_row.py [--rows 20000]

At 5,000 hangups/s every microsecond here is 0.5 % of a core; the fleet benchmark (bench_fleet.py load) shares two.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pbx_codes.catalog import load_catalogs  # noqa: E402 - after the path set-up above
from pbx_codes.console.events import annotation_event, hangup_event  # noqa: E402
from pbx_codes.console.feed import encode_events  # noqa: E402
from pbx_codes.console.store_feed import annotation_from_row  # noqa: E402
from pbx_codes.model import LANGS, Annotation, Observation, Outcome, Side  # noqa: E402
from pbx_codes.resolve import Resolver  # noqa: E402
from pbx_codes.sinks.bus import with_instance  # noqa: E402
from pbx_codes.store.schema import COLUMNS, dict_from_record, row_from_annotation  # noqa: E402

BATCH = 30  # hangups per `hangups` message, about what the console sends at a fleet's rate


def per_call_us(fn: Callable[[], Any], n: int) -> float:
    fn()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - t0)
    return best / n * 1e6


def generic_record_dict(record: Any) -> dict[str, Any]:
    """By name, as the store did before: what `dict_from_record` returns."""
    raw = dict(zip(COLUMNS, record, strict=True))
    out: dict[str, Any] = {k: v for k, v in raw.items() if not k.startswith("text_") and k != "ts"}
    out["exact"] = bool(raw["exact"]) if raw["exact"] is not None else None
    out["timestamp"] = raw["ts"]
    out["texts"] = {lang: raw[f"text_{lang}"] for lang in LANGS if raw.get(f"text_{lang}")}
    return out


def generic_encode(items: list[tuple[str, dict[str, Any]]]) -> bytes:
    """The stdlib's JSON, as the stream did before: what `encode_events(items, True)` sends."""
    run = [data for _, data in items]
    return f"event: hangups\ndata: {json.dumps(run, ensure_ascii=False, default=str)}\n\n".encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20000)
    n = parser.parse_args().rows
    resolver = Resolver(load_catalogs(), default_catalog="sip")
    now = time.time()
    annotation = resolver.resolve(Observation(
        sip_code="486", phrase="Busy Here", pbx="asterisk", hangup_by=Side.CARRIER, outcome=Outcome.CARRIER_FINAL,
        trunk="trunk-7", attempt=1, call_id="call-1", leg_id="leg-1", channel="PJSIP/trunk-7-00000001",
        number="+380441234567", timestamp=now, started_at=now - 20, ended_at=now))
    stamped = with_instance(annotation, "pbx-01")
    row = row_from_annotation(stamped)
    record = tuple(None if c.startswith("text_") else row[c] for c in COLUMNS)
    stored = {**dict_from_record(record), "texts": dict(annotation.texts)}
    cache: dict[tuple[Any, ...], Any] = {}
    event = annotation_event(stamped, now=now)
    items = [("hangup", event)] * BATCH
    assert generic_record_dict(record) == dict_from_record(record)
    assert hangup_event(stamped.to_dict()) == event
    assert json.loads(generic_encode(items).split(b"data: ", 1)[1]) == json.loads(
        encode_events(items, True).split(b"data: ", 1)[1])

    def stamp_generic() -> Annotation:
        return replace(annotation, observation=replace(annotation.observation, instance="pbx-01"))

    steps = [
        ("agent: bus stamps the instance", stamp_generic, lambda: with_instance(annotation, "pbx-01")),
        ("agent: the row the store writes", None, lambda: row_from_annotation(stamped)),
        ("console: stored record -> dict", lambda: generic_record_dict(record), lambda: dict_from_record(record)),
        ("console: dict -> annotation for the bus", lambda: annotation_from_row(stored),
         lambda: annotation_from_row(stored, cache)),
        ("console: the feed event", lambda: hangup_event(stamped.to_dict()), lambda: annotation_event(stamped)),
        (f"console: encoding, per hangup of {BATCH}", lambda: generic_encode(items),
         lambda: encode_events(items, True)),
    ]
    print(f"{'step':<42} {'generic':>9} {'now':>9}  ratio")
    for label, before, after in steps:
        div = BATCH if label.startswith("console: encoding") else 1
        now_us = per_call_us(after, n // div) / div
        if before is None:
            print(f"{label:<42} {'':>9} {now_us:7.2f} us")
            continue
        before_us = per_call_us(before, n // div) / div
        print(f"{label:<42} {before_us:7.2f} us {now_us:7.2f} us  {before_us / now_us:4.1f}x")


if __name__ == "__main__":
    main()
