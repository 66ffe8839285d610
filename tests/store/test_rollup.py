"""The rollup's histogram bucket: exact below 64 ms, above it a lower bound with a 6-bit mantissa, the same in
SQLite's SQL, PostgreSQL's and Python; and a range of hours covered by the fewest aligned days, blocks and hours, or
by the cheapest sum of them, each added or taken away."""
from __future__ import annotations

import random
import sqlite3
from collections import Counter

import pytest

from pbx_codes.store.rollup import UNIT_COST, bucket, bucket_middle, bucket_of, bucket_width, cover, signed_cover

#: (whole ms, the bucket's lower bound, its width)
PINNED = [(0, 0, 1), (1, 1, 1), (63, 63, 1), (64, 64, 2), (65, 64, 2), (127, 126, 2), (128, 128, 4), (131, 128, 4),
          (2322, 2304, 64), ((1 << 20) - 1, (1 << 20) - (1 << 14), 1 << 14), (1 << 20, 1 << 20, 1 << 15),
          ((1 << 31) - 1, (1 << 31) - (1 << 25), 1 << 25), (1 << 31, 1 << 31, 1 << 26),
          ((1 << 63) - 1, (1 << 63) - (1 << 57), 1 << 57)]
EDGES = sorted({v + d for k in range(0, 63) for v in (1 << k,) for d in (-1, 0, 1) if 0 <= v + d < 1 << 63})


def test_the_bucket_is_exact_below_64_ms_and_a_lower_bound_with_a_6_bit_mantissa_above() -> None:
    for ms, lower, width in PINNED:
        assert (bucket_of(ms), bucket_width(bucket_of(ms))) == (lower, width), ms
        assert lower <= ms < lower + width
    for ms in EDGES:
        lower = bucket_of(ms)
        assert lower <= ms < lower + bucket_width(lower) and bucket_of(lower) == lower
        assert bucket_width(lower) <= max(1, lower / 32)  # at most 1/32 of the value: half of it 1.6 %
    assert (bucket_middle(63), bucket_middle(64), bucket_middle(128)) == (63, 64.5, 129.5)


def test_sqlite_buckets_as_python_does() -> None:
    conn = sqlite3.connect(":memory:")
    values = EDGES + [ms for ms, _, _ in PINNED]
    got = [conn.execute(f"SELECT {bucket('m')} FROM (SELECT CAST(? AS BIGINT) AS m)", (ms,)).fetchone()[0]
           for ms in values]
    assert got == [bucket_of(ms) for ms in values]


def test_postgresql_buckets_as_python_does(postgres_url: str) -> None:
    psycopg = pytest.importorskip("psycopg")
    values = EDGES + [ms for ms, _, _ in PINNED]
    with psycopg.connect(postgres_url) as conn:
        got = [conn.execute(f"SELECT {bucket('m')} FROM (SELECT CAST(%s AS BIGINT) AS m) t", (ms,)).fetchone()[0]
               for ms in values]
    assert got == [bucket_of(ms) for ms in values]


def test_a_range_of_hours_is_covered_by_the_fewest_aligned_days_blocks_and_hours() -> None:
    day = 1_000_008  # a UTC midnight, in hours since the epoch
    assert cover(day - 3, day + 31) == [(1, day - 3), (1, day - 2), (1, day - 1), (24, day), (6, day + 24),
                                        (1, day + 30)]
    assert cover(day + 1, day + 13) == [(1, day + 1), (1, day + 2), (1, day + 3), (1, day + 4), (1, day + 5),
                                        (6, day + 6), (1, day + 12)]
    assert cover(day, day + 24, spans=()) == [(1, day + h) for h in range(24)]
    for first, last in ((day - 40, day + 200), (day + 5, day + 7), (day + 3, day + 3)):
        units = cover(first, last)
        hours = [h for span, start in units for h in range(start, start + span)]
        assert hours == list(range(first, last))  # every hour once, none outside
        assert all(start % span == 0 for span, start in units)


def test_a_range_of_hours_is_the_cheapest_signed_sum_of_sealed_blocks_and_hours() -> None:
    day = 1_000_008  # a UTC midnight, in hours since the epoch
    sealed = {6: day + 48, 24: day + 48}
    # a 6-hour block less one hour instead of five hours; a day less two hours instead of 22 hours' worth of units
    assert signed_cover(day + 1, day + 13, sealed=sealed) == [(6, day, 1), (1, day, -1), (6, day + 6, 1),
                                                              (1, day + 12, 1)]
    assert signed_cover(day + 2, day + 24, sealed=sealed) == [(24, day, 1), (1, day, -1), (1, day + 1, -1)]
    # nothing sealed yet: the hours themselves; SQLite (no blocks): the hours
    assert signed_cover(day + 2, day + 5, sealed={6: day, 24: day}) == [(1, day + h, 1) for h in (2, 3, 4)]
    assert signed_cover(day, day + 24, spans=()) == [(1, day + h, 1) for h in range(24)]
    rng = random.Random(7)
    for _ in range(2000):
        first = day - 60 + rng.randrange(200)
        last = first + rng.randrange(0, 200)
        watermarks = {n: (day + rng.randrange(-50, 220)) // n * n for n in (6, 24)}
        units = signed_cover(first, last, sealed=watermarks)
        counted: Counter[int] = Counter()
        for span, start, sign in units:
            assert start % span == 0 and sign in (1, -1)
            assert span == 1 or start + span <= watermarks[span]  # only sealed blocks
            for hour in range(start, start + span):
                counted[hour] += sign
        assert {h for h, n in counted.items() if n} == set(range(first, last))  # every hour once, none outside
        assert set(counted.values()) <= {0, 1}
        plain = cover(first, last, sealed=watermarks)
        assert sum(UNIT_COST[n] for n, _, _ in units) <= sum(UNIT_COST[n] for n, _ in plain)  # never reads more
