"""The trunk quality table computed inside PostgreSQL: the same measures as `pbx_codes.quality.measures.per_trunk`
over the same legs, without carrying every leg into Python.

Two queries: the seizures counted per (pbx, trunk, category, outcome, SIP code, code, phrase), from which the class
table gives classes, NER, answers, RFC 6076 responses and top failures exactly as `TrunkQuality.add` does; and per
(pbx, trunk) the delays' percentiles (`percentile_cont`: linear between the closest ranks, as `percentile`) and
the mean duration. The delays are the definitions of `pbx_codes.quality.legs` written in SQL.
"""
from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Any

from pbx_codes.quality.classes import ClassTable
from pbx_codes.quality.measures import TrunkQuality, _ms, _s
from pbx_codes.store.rollup import DURATION as _DURATION
from pbx_codes.store.rollup import HOUR, SEIZURE, SPANS, bucket, bucket_middle, edge_rows, signed_cover
from pbx_codes.store.rollup import PDD as _PDD
from pbx_codes.store.rollup import SRD as _SRD


def _where(since: float, until: float, filters: dict[str, str | None]) -> tuple[str, list[Any]]:
    where = ["ts >= %s", "ts < %s", "trunk IS NOT NULL", "trunk <> ''", "attempt IS NOT NULL"]
    params: list[Any] = [since, until]
    for column, value in filters.items():
        if value:
            where.append(f"{column} = %s")
            params.append(value)
    return " AND ".join(where), params


def _percentiles(expr: str) -> str:
    return (f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {expr}), "
            f"percentile_cont(0.95) WITHIN GROUP (ORDER BY {expr}), COUNT({expr})")


async def trunk_quality_raw(backend: Any, table: ClassTable, since: float, until: float, *,
                            pbx: str | None = None, trunk: str | None = None,
                            instance: str | None = None) -> list[dict[str, Any]]:
    """`per_trunk`'s results for the seizures that ended in [since, until), per (pbx, trunk), in its order, from
    every leg of the range (PostgreSQL; `trunk_quality` reads the hourly rollup instead)."""
    where, params = _where(since, until, {"pbx": pbx, "trunk": trunk, "instance": instance})
    counts = await backend.fetch(
        "SELECT COALESCE(pbx, ''), trunk, COALESCE(category, 'unknown'), outcome, sip, code, phrase, COUNT(*) "
        f"FROM hangups WHERE {where} GROUP BY 1, 2, 3, 4, 5, 6, 7", params)
    delays = await backend.fetch(
        f"SELECT COALESCE(pbx, ''), trunk, {_percentiles(_PDD)}, {_percentiles(_SRD)}, {_percentiles(_DURATION)}, "
        f"AVG({_DURATION}) FROM hangups WHERE {where} GROUP BY 1, 2", params)
    groups: dict[tuple[str, str], TrunkQuality] = {}
    for pbx_name, trunk_name, category, outcome, sip, code, phrase, n in counts:
        group = groups.get((pbx_name, trunk_name))
        if group is None:
            group = groups[(pbx_name, trunk_name)] = TrunkQuality(table, pbx=pbx_name, trunk=trunk_name)
        _count(group, table, category, outcome, sip, code, phrase, int(n))
    timing = {(r[0], r[1]): r[2:] for r in delays}
    out = []
    for key in sorted(groups):
        result = groups[key].result()
        pdd50, pdd95, pdd_n, srd50, srd95, srd_n, dur50, dur95, dur_n, acd = timing.get(key, (None,) * 10)
        result.update({"pdd_p50_ms": _ms(pdd50), "pdd_p95_ms": _ms(pdd95), "srd_p50_ms": _ms(srd50),
                       "srd_p95_ms": _ms(srd95), "acd_s": _s(acd), "duration_p50_s": _s(dur50),
                       "duration_p95_s": _s(dur95),
                       "timed": {"pdd": int(pdd_n or 0), "srd": int(srd_n or 0), "duration": int(dur_n or 0)}})
        out.append(result)
    return out


def same_measures(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]]) -> bool:
    """For tests and the benchmark: the two tables agree (floats to 1e-9 relative)."""
    import math

    def close(x: Any, y: Any) -> bool:
        if isinstance(x, float) and isinstance(y, float):
            return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)
        if isinstance(x, dict) and isinstance(y, dict):
            return x.keys() == y.keys() and all(close(x[k], y[k]) for k in x)
        if isinstance(x, list) and isinstance(y, list):
            return len(x) == len(y) and all(close(i, j) for i, j in zip(x, y))
        return bool(x == y)
    return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))


#: The percentiles the rollup's buckets may move, and half a millisecond in each one's unit (ms; s for durations).
PERCENTILE_UNITS = {"pdd_p50_ms": 0.5, "pdd_p95_ms": 0.5, "srd_p50_ms": 0.5, "srd_p95_ms": 0.5,
                    "duration_p50_s": 0.0005, "duration_p95_s": 0.0005}


def within_a_bucket(read: float | None, exact: float | None, half_ms: float) -> bool:
    """A percentile read from the rollup against the one over the legs: at most half a bucket apart, 0.5 ms plus
    1/64 of the value (`pbx_codes.store.rollup.bucket`), with room for the reported values' rounding."""
    if read is None or exact is None:
        return read is None and exact is None
    return abs(read - exact) <= half_ms * 1.01 + abs(exact) / 64


class _Histogram:
    """One measure's merged histogram: bucket lower bounds (ms) in order and their running counts."""

    __slots__ = ("bounds", "running")

    def __init__(self, buckets: list[tuple[int, int]]) -> None:
        buckets.sort()
        self.bounds = [ms for ms, _ in buckets]
        self.running = list(accumulate(n for _, n in buckets))

    @property
    def total(self) -> int:
        return self.running[-1] if self.running else 0

    def percentile(self, q: float) -> float | None:
        """`percentile` (linear between the closest ranks), in seconds: each bucket read at its middle
        (`bucket_middle`); the ranks' buckets found by bisection on the running counts."""
        total = self.total
        if not total:
            return None
        rank = (total - 1) * q
        low = int(rank)
        below = bucket_middle(self.bounds[bisect_right(self.running, low)]) / 1000.0
        above = bucket_middle(self.bounds[bisect_right(self.running, min(low + 1, total - 1))]) / 1000.0
        return below + (above - below) * (rank - low)


_EMPTY = _Histogram([])

#: A unit of the rollup: (length in hours: 1 for an hour, else a block of `quality_span`; first hour; +1 or -1).
Unit = tuple[int, int, int]


class _Merged:
    """Counts and histograms merged over some units of the rollup (and rows): per (pbx, trunk, category, outcome,
    sip, code, phrase) the seizures and the summed duration; per (pbx, trunk, measure) the buckets' counts."""

    __slots__ = ("counts", "delays")

    def __init__(self) -> None:
        self.counts: dict[tuple[str, ...], tuple[int, float]] = {}
        self.delays: dict[tuple[str, str, str], dict[int, int]] = {}

    @classmethod
    def of(cls, rows: Sequence[tuple[Any, ...]]) -> _Merged:
        """From `_merge_statement`'s rows: kind 'c' counts, 'd' a histogram bucket, 'a' a histogram (category holds
        the measure)."""
        out = cls()
        counts, delays = out.counts, out.delays
        for kind, pbx_name, trunk_name, category, outcome, sip, code, phrase, n, dur_sum, ms, ns in rows:
            if kind == "a":
                delays[(pbx_name, trunk_name, category)] = dict(zip(ms, ns))
            elif kind == "d":
                found = delays.get((pbx_name, trunk_name, category))
                if found is None:
                    delays[(pbx_name, trunk_name, category)] = {ms: int(n)}
                else:
                    found[ms] = int(n)
            else:
                counts[(pbx_name, trunk_name, category, outcome, sip, code, phrase)] = (int(n), float(dur_sum or 0.0))
        return out

    def plus(self, other: _Merged) -> _Merged:
        """A new merge of both (neither changed: one of them may be cached)."""
        if not other.counts and not other.delays:
            return self
        out = _Merged()
        out.counts = dict(self.counts)
        for key, (n, dur) in other.counts.items():
            had = out.counts.get(key)
            out.counts[key] = (n, dur) if had is None else (had[0] + n, had[1] + dur)
        out.delays = dict(self.delays)
        for key, buckets in other.delays.items():
            had_buckets = out.delays.get(key)
            if had_buckets is None:
                out.delays[key] = buckets
            else:
                both = dict(had_buckets)
                for ms, n in buckets.items():
                    both[ms] = both.get(ms, 0) + n
                out.delays[key] = both
        return out


class QualityCache:
    """What `trunk_quality` keeps between calls for one store (the console owns one): the merged rollup of the
    units a recent range read that no longer change as time passes (its whole hours up to the hour it ends in),
    keyed by the scope and the units, and each such unit as stored (`_Stored`), each with the fingerprint of the
    units it was read at (`_fingerprint`). A late row (a backfill's, an agent's late batch) for any of them changes
    the fingerprint, and the units are read again."""

    #: Ranges kept (the console's three presets, a few scopes) and units kept: about 300 KB each at 10 M rows
    #: (40 trunks), a week's units and the hours of a day.
    RANGES = 8
    UNITS = 64

    __slots__ = ("ranges", "units")

    def __init__(self) -> None:
        self.ranges: OrderedDict[tuple[Any, ...], tuple[Any, _Merged]] = OrderedDict()
        self.units: OrderedDict[tuple[Any, ...], tuple[Any, _Stored]] = OrderedDict()

    def clear(self) -> None:
        self.ranges.clear()
        self.units.clear()


def _hours(hours: list[int]) -> str:
    """A condition on `hour` for these hours: runs of consecutive hours as ranges."""
    runs: list[list[int]] = []
    for hour in sorted(set(hours)):
        if runs and runs[-1][1] == hour:
            runs[-1][1] = hour + 1
        else:
            runs.append([hour, hour + 1])
    return "(" + " OR ".join(f"hour = {a:d}" if b == a + 1 else f"(hour >= {a:d} AND hour < {b:d})"
                             for a, b in runs) + ")"


async def _edges(backend: Any, since: float, until: float, first: int, last: int,
                 within: Callable[[float, float], str]) -> tuple[list[int], list[tuple[float, float, int]]]:
    """The partial hours at the range's edges: (hours to add from the rollup, row ranges to add (+1) or take away
    (-1)). Each partial hour is read from its rows inside the range, or as its hour of the rollup less its rows
    outside the range, whichever spans less time with rows in it: at most half an hour of rows per edge, and for a
    range that ends now, none at its end (nothing lies after now; one probe of the newest row says so). `within`
    gives the condition on a time range."""
    if first * HOUR >= until:  # no hour begins inside the range: its rows
        return [], [(float(since), float(until), 1)] if since < until else []
    hours: list[int] = []
    edges: list[tuple[float, float, int]] = []
    start, end = first * HOUR, last * HOUR
    if since < start:
        if since - (start - HOUR) < start - since:
            hours.append(first - 1)
            edges.append((float(start - HOUR), float(since), -1))
        else:
            edges.append((float(since), float(start), 1))
    if until > end:
        found = await backend.fetch(f"SELECT MAX(ts) FROM hangups WHERE {within(float(until), float(end + HOUR))}")
        newest = found[0][0] if found else None
        after = 0.0 if newest is None else float(newest) - until  # the time after the range holding rows
        if after < until - end:
            hours.append(last)
            if newest is not None:
                edges.append((float(until), float(end + HOUR), -1))
        else:
            edges.append((float(end), float(until), 1))
    return hours, edges


def _ranges(since: float, until: float) -> tuple[int, int]:
    """The whole hours inside [since, until) as [first, last): read from the rollup; the rest from the rows."""
    first = -int(-since // HOUR)
    last = int(until // HOUR)
    return first, max(first, last)


async def trunk_quality(backend: Any, table: ClassTable, since: float, until: float, *, pbx: str | None = None,
                        trunk: str | None = None, instance: str | None = None,
                        cache: QualityCache | None = None) -> list[dict[str, Any]]:
    """`per_trunk`'s results for the seizures that ended in [since, until), per (pbx, trunk), in its order: the
    whole hours of the range from the hourly rollup (`pbx_codes.store.rollup`), the partial hours at its edges from
    the rows, on SQLite and PostgreSQL. Equal to the computation over every leg; the delays' percentiles within
    half a histogram bucket (0.5 ms plus 1/64 of the value, `pbx_codes.store.rollup.bucket`). With `cache` (one
    per store), the settled part of a range asked before is not read again while its fingerprint holds."""
    if not (math.isfinite(since) and math.isfinite(until)):
        raise ValueError("the range's bounds must be finite numbers")
    dialect = backend.dialect
    pg = dialect.name == "postgresql"
    first, last = _ranges(since, until)
    if pg and first * HOUR >= until:
        # Inside one hour: the rollup has nothing to give, and one query over the rows with percentile_cont is about
        # 4x quicker than the edge query's histograms over the same rows. (A range across one hour's start, as an
        # hour ending now, is read as the two partial hours at its edges: each from the rollup's hour less its rows
        # outside the range, or from its rows inside, whichever are fewer.)
        return await trunk_quality_raw(backend, table, since, until, pbx=pbx, trunk=trunk, instance=instance)
    scope = [(c, v) for c, v in (("pbx", pbx), ("trunk", trunk), ("instance", instance)) if v]
    scoped = [f"{c} = ?" for c, _ in scope]
    scope_params: list[Any] = [v for _, v in scope]

    def within(a: float, b: float) -> str:
        # The range's bounds go in as literals (numbers we computed, not text from a request): a statement the
        # driver prepared after a few runs would otherwise get a generic plan blind to how narrow the range is.
        # On PostgreSQL the day too, so that only the partitions of its days are read.
        days = [f"day >= {int(a // 86400):d}", f"day <= {int(b // 86400):d}"] if pg else []
        return " AND ".join([f"ts >= {a!r}", f"ts < {b!r}", *days])

    def raw(a: float, b: float) -> str:
        return " AND ".join([SEIZURE, within(a, b), *scoped])

    hours, edges = await _edges(backend, since, until, first, last, within)
    # The edges' hours read from the rollup (the hour before the range, the hour it ends in) are next to the whole
    # hours: covered together. PostgreSQL's blocks as far as they are sealed, each added or taken away.
    whole = (min([first, *hours]), max([last, *(h + 1 for h in hours)]))
    sealed = {int(n): int(h) for n, h in await backend.fetch("SELECT span, until_hour FROM quality_sealed")} if pg \
        else {}
    units = signed_cover(*whole, SPANS if pg else (), sealed)
    # The units that end by the range's last whole hour are read from the cache while their fingerprint holds (for
    # the console's ranges, every unit but the current hour); the others and the edges' rows each time.
    settled = [u for u in units if u[1] + u[0] <= last]
    fresh = [u for u in units if u[1] + u[0] > last]
    merged = await _settled(backend, settled, tuple(scope), scoped, scope_params, cache)
    if any(n == 1 for n, _, _ in fresh):  # the current hour: read as it is stored, merged here
        current = [u for u in fresh if u[0] == 1]
        stored = await _as_stored(backend, [(1, h) for _, h, _ in current], scoped, scope_params)
        merged = merged.plus(_merge_stored([(stored[(1, h)], sign) for _, h, sign in current]))
        fresh = [u for u in fresh if u[0] > 1]
    if fresh or edges:
        statement, params = _merge_statement(fresh, edges, raw, scoped, scope_params, pg)
        merged = merged.plus(_Merged.of(await backend.fetch(statement, params)))
    return _results(merged, table)


class _Stored:
    """One unit of the rollup (an hour or a block) as stored, its instances not merged: its count rows (the key of
    `_Merged.counts`, n, summed duration) and its histograms ((pbx, trunk, measure), lower bounds, counts)."""

    __slots__ = ("counts", "delays")

    def __init__(self) -> None:
        self.counts: list[tuple[tuple[str, ...], int, float]] = []
        self.delays: list[tuple[tuple[str, str, str], Sequence[int], Sequence[int]]] = []


async def _as_stored(backend: Any, units: list[tuple[int, int]], scoped: list[str],
                     scope_params: list[Any]) -> dict[tuple[int, int], _Stored]:
    """The units (length, first hour) read as stored, one statement. On PostgreSQL a histogram per (unit, instance,
    pbx, trunk, measure) comes as two arrays grouped in the primary key's order: no sort (merging the units in SQL
    sorts their buckets by text keys: for an hour's ~13,000 buckets 40 ms against 9 ms, for four 6-hour blocks about
    200 against 110 ms), no row per bucket to read in Python. SQLite (hours only) gives a row per bucket."""
    pg = backend.dialect.name == "postgresql"
    parts: list[str] = []
    params: list[Any] = []
    hours = [h for n, h in units if n == 1]
    blocks = [(n, h) for n, h in units if n > 1]
    sources = ([("1", "quality_hourly", "quality_hourly_delay", _hours(hours), "hour")] if hours else []) + [
        ("span", "quality_span", "quality_span_delay",
         f"span = {n:d} AND hour IN ({', '.join(str(h) for s, h in blocks if s == n)})", "span, hour")
        for n in sorted({n for n, _ in blocks})]
    for span, counted, timed, which, key in sources:
        where = " AND ".join([which, *scoped])
        parts.append(f"SELECT 'c', {span}, hour, pbx, trunk, category, outcome, sip, code, phrase, n, dur_sum, "
                     f"NULL, NULL FROM {counted} WHERE {where}")
        if pg:
            parts.append(f"SELECT 'a', {span}, hour, pbx, trunk, measure, NULL, NULL, NULL, NULL, NULL, NULL, "
                         f"array_agg(ms), array_agg(n) FROM {timed} WHERE {where} "
                         f"GROUP BY {key}, instance, pbx, trunk, measure")
        else:
            parts.append(f"SELECT 'd', {span}, hour, pbx, trunk, measure, NULL, NULL, NULL, NULL, NULL, NULL, ms, n "
                         f"FROM {timed} WHERE {where}")
        params += scope_params + scope_params
    if pg:
        parts[0] = parts[0].replace("NULL, NULL FROM", "CAST(NULL AS BIGINT[]), CAST(NULL AS BIGINT[]) FROM", 1)
    out = {unit: _Stored() for unit in units}
    buckets: dict[tuple[int, int, str, str, str], tuple[list[int], list[int]]] = {}
    for kind, span, hour, pbx_name, trunk_name, category, outcome, sip, code, phrase, n, dur_sum, ms, ns in \
            await backend.fetch(" UNION ALL ".join(parts), params):
        unit = out[(int(span), int(hour))]
        if kind == "a":
            unit.delays.append(((pbx_name, trunk_name, category), array("q", ms), array("q", ns)))
        elif kind == "d":
            found = buckets.get((int(span), int(hour), pbx_name, trunk_name, category))
            if found is None:
                buckets[(int(span), int(hour), pbx_name, trunk_name, category)] = ([ms], [ns])
            else:
                found[0].append(ms)
                found[1].append(ns)
        else:
            unit.counts.append(((pbx_name, trunk_name, category, outcome, sip, code, phrase), int(n), float(dur_sum)))
    for (length, start, *group), (lows, counts) in buckets.items():
        out[(length, start)].delays.append(((group[0], group[1], group[2]), array("q", lows), array("q", counts)))
    return out


def _merge_stored(units: list[tuple[_Stored, int]]) -> _Merged:
    """Units as stored, each added (+1) or taken away (-1), merged in Python."""
    out = _Merged()
    counts, delays = out.counts, out.delays
    for unit, sign in sorted(units, key=lambda u: -u[1]):  # the added first: a histogram's first is copied whole
        for key, n, dur in unit.counts:
            had = counts.get(key)
            counts[key] = (sign * n, sign * dur) if had is None else (had[0] + sign * n, had[1] + sign * dur)
        for group, ms, ns in unit.delays:
            found = delays.get(group)
            if found is None:
                delays[group] = dict(zip(ms, ns if sign > 0 else [-c for c in ns]))
            else:
                for m, c in zip(ms, ns):
                    found[m] = found.get(m, 0) + sign * c
    return out


async def _settled(backend: Any, units: list[Unit], scope: tuple[Any, ...], scoped: list[str],
                   scope_params: list[Any], cache: QualityCache | None) -> _Merged:
    """The units merged, from the cache while their fingerprints are the ones they were read at (read first: a row
    that comes between the two reads makes the next fingerprint differ, never a stale merge look current). Two
    levels: the merge of the range's units (what a range asked again reads), and each unit as stored (when the hour
    turns, a range's units are mostly those of the hour before: only the new ones are read)."""
    if not units:
        return _Merged()
    if cache is None:  # nothing kept: every unit read, no fingerprint needed
        each = await _as_stored(backend, sorted({(n, h) for n, h, _ in units}), scoped, scope_params)
        return _merge_stored([(each[(n, h)], sign) for n, h, sign in units])
    fingerprints = await _fingerprint(backend, units)
    ranges, stored = cache.ranges, cache.units
    ordered = tuple(sorted(units))
    fingerprint = tuple(fingerprints.get((n, h)) for n, h, _ in ordered)
    key = (scope, ordered)
    found = ranges.get(key)
    if found is not None and found[0] == fingerprint:
        ranges.move_to_end(key)
        return found[1]
    wanted = sorted({(n, h) for n, h, _ in units})
    have: dict[tuple[int, int], _Stored] = {}
    for unit in wanted:
        kept = stored.get((scope, unit))
        if kept is not None and kept[0] == fingerprints.get(unit):
            stored.move_to_end((scope, unit))
            have[unit] = kept[1]
    missing = [unit for unit in wanted if unit not in have]
    if missing:
        for unit, read in (await _as_stored(backend, missing, scoped, scope_params)).items():
            have[unit] = read
            stored[(scope, unit)] = (fingerprints.get(unit), read)
        while len(stored) > cache.UNITS:
            stored.popitem(last=False)
    merged = _merge_stored([(have[(n, h)], sign) for n, h, sign in units])
    ranges[key] = (fingerprint, merged)
    while len(ranges) > cache.RANGES:
        ranges.popitem(last=False)
    return merged


async def _fingerprint(backend: Any, units: list[Unit]) -> dict[tuple[int, int], tuple[int, int]]:
    """Per unit (length, first hour) of the rollup, its count rows and seizures: a row counted into it later (the
    trigger counts a late row into its hour and its sealed blocks) adds a seizure, retention removes them all (a
    unit with no rows has none)."""
    hours = [h for n, h, _ in units if n == 1]
    parts = [f"SELECT 1, hour, COUNT(*), SUM(n) FROM quality_hourly WHERE {_hours(hours)} GROUP BY 2"] if hours else []
    for span in sorted({n for n, _, _ in units if n > 1}):
        starts = ", ".join(str(h) for h in sorted({h for n, h, _ in units if n == span}))
        parts.append(f"SELECT span, hour, COUNT(*), SUM(n) FROM quality_span WHERE span = {span:d} AND hour IN "
                     f"({starts}) GROUP BY 1, 2")
    rows = await backend.fetch(" UNION ALL ".join(parts))
    return {(int(n), int(h)): (int(c), int(s)) for n, h, c, s in rows}


def _merge_statement(units: list[Unit], edges: list[tuple[float, float, int]], raw: Callable[[float, float], str],
                     scoped: list[str], scope_params: list[Any], arrays: bool) -> tuple[str, list[Any]]:
    """One statement: the edges' rows read once (a materialized CTE) for both the counts and the histograms, each
    merged with the rollup's hours and blocks (each added or taken away); rows of kind 'c' are counts, 'd' a
    histogram's bucket, 'a' (`arrays`) a whole histogram as its buckets' lower bounds and counts."""
    count_parts: list[str] = []
    delay_parts: list[str] = []
    params: list[Any] = []
    count_params: list[Any] = []
    delay_params: list[Any] = []
    for sign in (1, -1):
        hours = [h for n, h, s in units if n == 1 and s == sign]
        blocks = [(n, h) for n, h, s in units if n > 1 and s == sign]
        tables = ([("quality_hourly", "quality_hourly_delay", _hours(hours))] if hours else []) + (
            [("quality_span", "quality_span_delay", "(" + " OR ".join(
                f"(span = {n:d} AND hour IN ({', '.join(str(h) for s, h in blocks if s == n)}))"
                for n in sorted({n for n, _ in blocks})) + ")")] if blocks else [])
        n, dur_sum = ("n", "dur_sum") if sign > 0 else ("-n AS n", "-dur_sum AS dur_sum")
        for counted, timed, which in tables:
            rolled = " AND ".join([which, *scoped])
            count_parts.append(f"SELECT pbx, trunk, category, outcome, sip, code, phrase, {n}, {dur_sum} "
                               f"FROM {counted} WHERE {rolled}")
            delay_parts.append(f"SELECT pbx, trunk, measure, ms, {n} FROM {timed} WHERE {rolled}")
            count_params += scope_params
            delay_params += scope_params
    cte = ""
    if edges:
        cte = ("WITH e AS MATERIALIZED (" + " UNION ALL ".join(edge_rows("hangups", raw(a, b), sign)
                                                             for a, b, sign in edges) + ") ")
        for _ in edges:
            params += scope_params
        count_parts.append("SELECT pbx, trunk, category, outcome, sip, code, phrase, sign AS n, sign * dur AS dur_sum "
                           "FROM e")
        delay_parts += [f"SELECT pbx, trunk, '{m}' AS measure, {bucket(m)} AS ms, sign AS n FROM e "
                        f"WHERE {m} IS NOT NULL" for m in ("pdd", "srd", "duration")]
    counts = ("SELECT 'c', pbx, trunk, category, outcome, sip, code, phrase, CAST(SUM(n) AS BIGINT), SUM(dur_sum), "
              f"NULL, NULL FROM ({' UNION ALL '.join(count_parts)}) u GROUP BY 2, 3, 4, 5, 6, 7, 8 HAVING SUM(n) <> 0")
    buckets = ("SELECT pbx, trunk, measure, ms, CAST(SUM(n) AS BIGINT) AS n "
               f"FROM ({' UNION ALL '.join(delay_parts)}) v GROUP BY 1, 2, 3, 4 HAVING SUM(n) <> 0")
    if arrays:  # PostgreSQL: a histogram's buckets as two arrays in one row (read in C, not a row per bucket)
        delays = (f"SELECT 'a', pbx, trunk, measure, NULL, NULL, NULL, NULL, NULL, NULL, "
                  f"array_agg(ms), array_agg(n) FROM ({buckets}) b GROUP BY 2, 3, 4")
        counts = counts.replace("NULL, NULL FROM", "CAST(NULL AS BIGINT[]), CAST(NULL AS BIGINT[]) FROM", 1)
    else:
        delays = f"SELECT 'd', pbx, trunk, measure, NULL, NULL, NULL, NULL, n, NULL, ms, NULL FROM ({buckets}) b"
    return cte + counts + " UNION ALL " + delays, params + count_params + delay_params


def _results(merged: _Merged, table: ClassTable) -> list[dict[str, Any]]:
    """The table per (pbx, trunk) from the merged counts and histograms (a count or bucket that adds up to 0, a
    unit's rows taken away again, counts nothing)."""
    groups: dict[tuple[str, str], TrunkQuality] = {}
    durations: dict[tuple[str, str], float] = {}
    for (pbx_name, trunk_name, category, outcome, sip, code, phrase), (n, dur_sum) in merged.counts.items():
        if not n:
            continue
        key = (pbx_name, trunk_name)
        group = groups.get(key)
        if group is None:
            group = groups[key] = TrunkQuality(table, pbx=pbx_name, trunk=trunk_name)
        _count(group, table, category, outcome or None, sip or None, code or None, phrase or None, n)
        durations[key] = durations.get(key, 0.0) + dur_sum
    out = []
    for key in sorted(groups):
        result = groups[key].result()
        pdd, srd, dur = (_histogram(merged.delays.get((*key, m))) for m in ("pdd", "srd", "duration"))
        dur_n = dur.total
        result.update({"pdd_p50_ms": _ms(pdd.percentile(0.5)), "pdd_p95_ms": _ms(pdd.percentile(0.95)),
                       "srd_p50_ms": _ms(srd.percentile(0.5)), "srd_p95_ms": _ms(srd.percentile(0.95)),
                       "acd_s": _s(durations[key] / dur_n) if dur_n else None,
                       "duration_p50_s": _s(dur.percentile(0.5)), "duration_p95_s": _s(dur.percentile(0.95)),
                       "timed": {"pdd": pdd.total, "srd": srd.total, "duration": dur_n}})
        out.append(result)
    return out


def _histogram(buckets: dict[int, int] | None) -> _Histogram:
    # A bucket whose count adds up to 0 (rows added and taken away) is passed over by the bisection.
    return _Histogram(list(buckets.items())) if buckets else _EMPTY


def _count(group: TrunkQuality, table: ClassTable, category: str, outcome: str | None, sip: str | None,
           code: str | None, phrase: str | None, n: int) -> None:
    """`TrunkQuality.add` for n seizures of one outcome at once."""
    cls = table.classify(category)
    group.seizures += n
    group.classes[cls.name] += n
    group.ner_hits += cls.ner * n
    answered = category == "ok" or outcome == "answered"
    group.answered += answered * n
    group.responses["200" if answered else table.response(sip, outcome, code)] += n
    if not answered:
        group.failures[(category, code or sip or "", phrase or "")] += n


__all__ = ["PERCENTILE_UNITS", "QualityCache", "same_measures", "trunk_quality", "trunk_quality_raw",
           "within_a_bucket"]
