"""The trunk quality table's hourly rollup, kept as rows are written, so a day or a week is read from a few
thousand rollup rows instead of millions of legs.

Per hour x instance x PBX x trunk x (category, outcome, SIP code, code, phrase): the seizures and the sum of the
answered legs' durations (`quality_hourly`). The key keeps what the class table reads, not the classes themselves,
so NER, SER, SEER, ISA, answers and top failures are derived at read time exactly as from the legs, and a changed
class table applies to old hours too. The delays (PDD, SRD, duration) go into histograms of relative buckets
(`quality_hourly_delay`, `bucket`): a delay in whole milliseconds m is its own bucket below 64 ms, above it m's lower
bound with a 6-bit mantissa (width 2^(bit_length(m) - 6), at most 1/32 of the value), so an hour holds a few hundred
buckets per measure whatever the spread of the delays. Read at the bucket's middle, a percentile differs from the
one over the raw delays by at most half a bucket: 0.5 ms plus 1/64 of the value (1.6 %). A leg stored twice is
counted once (only inserted rows reach the triggers).

SQLite keeps it by a row trigger, PostgreSQL by a statement trigger over the inserted rows (one aggregated upsert
per batch). Retention removes whole hours of it with the rows they count.

PostgreSQL also keeps the same counts and histograms per 6-hour block and per UTC day (`quality_span`,
`quality_span_delay`, keyed by `span` in hours and the block's first hour). With delays that vary leg by leg an
hour's histogram holds a few hundred buckets per trunk whatever its traffic, so merging 24 or 168 hour-rows per trunk
is what made a day or a week slow; a day is now read from about 3 blocks and a few hours, a week from about 6 days, a
few blocks and a few hours (`cover`). The blocks are sealed after they end, not kept row by row: kept by the trigger
they doubled PostgreSQL's cost per stored row (measured: 130 -> 255 us). `seal_statements` adds the blocks that
ended since the last seal from the hourly rollup (a day from its four 6-hour blocks) and moves `quality_sealed`'s
watermark; a row that arrives for an hour already sealed (a backfill, a late agent) is counted into its blocks by
the trigger too. The sealer holds an advisory lock exclusively and each trigger run holds it shared, so no batch
falls between the sealer's read of the hours and its moving of the watermark; writers wait for a seal (tens to a few
hundred milliseconds, every 6 hours). Readers use only sealed blocks (`cover`'s `sealed`).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

from pbx_codes.quality.legs import NO_RESPONSE_OUTCOMES

HOUR = 3600
#: Below this many milliseconds a delay is its own bucket; above, buckets keep this many significant bits.
EXACT_MS = 64
_MANTISSA = 6
_TOP_BIT = 63  # BIGINT: the ladder covers every non-negative value

ANSWERED = "(category = 'ok' OR outcome = 'answered')"
_NO_RESPONSE = ", ".join(f"'{o}'" for o in sorted(NO_RESPONSE_OUTCOMES))
#: The legs the quality table counts: seizures (an attempt on a trunk).
SEIZURE = "trunk IS NOT NULL AND trunk <> '' AND attempt IS NOT NULL"


def _delay(start: str, end: str) -> str:
    return f"CASE WHEN {start} IS NOT NULL AND {end} IS NOT NULL AND {end} >= {start} THEN {end} - {start} END"


PDD = ("CASE WHEN started_at IS NOT NULL THEN "
       + _delay("started_at", f"COALESCE(progress_at, CASE WHEN {ANSWERED} THEN answered_at END)") + " END")
SRD = ("CASE WHEN started_at IS NULL THEN NULL "
       f"WHEN progress_at IS NOT NULL THEN {_delay('started_at', 'progress_at')} "
       f"WHEN {ANSWERED} THEN {_delay('started_at', 'answered_at')} "
       f"WHEN outcome IN ({_NO_RESPONSE}) OR category IN ('cancelled', 'pending') THEN NULL "
       f"ELSE {_delay('started_at', 'ended_at')} END")
DURATION = f"CASE WHEN {ANSWERED} THEN {_delay('answered_at', 'ended_at')} END"
DELAYS = {"pdd": PDD, "srd": SRD, "duration": DURATION}

#: The rollup's keys: the outcome's fields stored as '' for NULL (a key column cannot be NULL).
COUNT_KEY = ("hour", "instance", "pbx", "trunk", "category", "outcome", "sip", "code", "phrase")
DELAY_KEY = ("hour", "instance", "pbx", "trunk", "measure", "ms")
_GROUP = "COALESCE(instance, '') AS instance, COALESCE(pbx, '') AS pbx, trunk AS trunk"
_OUTCOME = "COALESCE(category, 'unknown') AS category, COALESCE(outcome, '') AS outcome, COALESCE(sip, '') AS sip, " \
           "COALESCE(code, '') AS code, COALESCE(phrase, '') AS phrase"


def hour_of(dialect: str) -> str:
    """floor(ts / 3600) as an integer (ts is never negative; SQLite's CAST truncates, PostgreSQL's rounds)."""
    return "CAST(ts / 3600 AS BIGINT)" if dialect == "sqlite" else "CAST(FLOOR(ts / 3600) AS BIGINT)"


def whole_ms(expr: str) -> str:
    """A delay in seconds -> whole milliseconds (the nearest)."""
    return f"CAST(ROUND(({expr}) * 1000) AS BIGINT)"


def bucket(ms: str) -> str:
    """Whole milliseconds (a column, evaluated once per rung) -> its bucket's lower bound, as `bucket_of`: a ladder
    on ranges with integer division, the same in SQLite and PostgreSQL (no math functions)."""
    rungs = [f"WHEN {ms} < {EXACT_MS} THEN {ms}"]
    for bits in range(_MANTISSA + 1, _TOP_BIT):  # ms in [2^(bits-1), 2^bits): width 2^(bits-6)
        width = 1 << (bits - _MANTISSA)
        rungs.append(f"WHEN {ms} < {1 << bits} THEN {ms} / {width} * {width}")
    top = 1 << (_TOP_BIT - _MANTISSA)
    return f"CASE {' '.join(rungs)} ELSE {ms} / {top} * {top} END"


def nearest_ms(ms: str) -> str:
    """Migration 5's buckets (every millisecond its own), kept so that migration renders as it ran."""
    return ms


def bucket_of(ms: int) -> int:
    """`bucket` in Python: the lower bound of the bucket holding `ms` whole milliseconds."""
    if ms < EXACT_MS:
        return ms
    shift = ms.bit_length() - _MANTISSA
    return (ms >> shift) << shift


def bucket_width(lower: int) -> int:
    """The number of whole milliseconds in the bucket whose lower bound is `lower`."""
    return 1 if lower < EXACT_MS else 1 << (lower.bit_length() - _MANTISSA)


def bucket_middle(lower: int) -> float:
    """The value a bucket stands for when read: its middle, in milliseconds."""
    return lower + (bucket_width(lower) - 1) / 2


def counts_select(source: str, hour: str, where: str = SEIZURE) -> str:
    """The rows of `source` (seizures) aggregated to `quality_hourly`'s key: n and the sum of durations."""
    return (f"SELECT {hour} AS hour, {_GROUP}, {_OUTCOME}, COUNT(*) AS n, COALESCE(SUM({DURATION}), 0) AS dur_sum "
            f"FROM {source} "
            f"WHERE {where} GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9")


def delays_select(source: str, hour: str, where: str = SEIZURE, *, lateral: bool = False,
                  ladder: Callable[[str], str] = bucket) -> str:
    """The rows of `source` aggregated to `quality_hourly_delay`'s key (one histogram per measure). `lateral`
    (PostgreSQL): one pass over the rows into a materialized CTE holding each row's three delays in whole
    milliseconds, then one aggregate per measure over it (about 4x quicker than a LATERAL VALUES per row, whose
    rescans cost more than the rows' reading); otherwise one pass per measure (`where` then appears three times).
    Each delay is made whole milliseconds once, then bucketed by `ladder`."""
    if lateral:
        values = ", ".join(f"{whole_ms(expr)} AS {name}" for name, expr in DELAYS.items())
        per_measure = " UNION ALL ".join(
            f"SELECT hour, instance, pbx, trunk, '{name}' AS measure, {ladder(name)} AS ms, COUNT(*) AS n FROM r "
            f"WHERE {name} IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6" for name in DELAYS)
        return (f"WITH r AS MATERIALIZED (SELECT {hour} AS hour, {_GROUP}, {values} FROM {source} WHERE {where}) "
                + per_measure)
    rows = " UNION ALL ".join(
        f"SELECT {hour} AS hour, {_GROUP}, '{name}' AS measure, {whole_ms(expr)} AS m FROM {source} "
        f"WHERE {where} AND ({expr}) IS NOT NULL" for name, expr in DELAYS.items())
    return (f"SELECT hour, instance, pbx, trunk, measure, {ladder('m')} AS ms, COUNT(*) AS n FROM ({rows}) AS b "
            "GROUP BY 1, 2, 3, 4, 5, 6")


def edge_rows(source: str, where: str, sign: int) -> str:
    """The rows of `source` (seizures) one by one as the rollup would count them: the counts' key, the answered
    leg's duration in seconds (0 otherwise), each delay in whole milliseconds (not yet bucketed) and `sign` (+1 to
    add the row, -1 to take it away from an hour read from the rollup)."""
    values = ", ".join(f"{whole_ms(expr)} AS {name}" for name, expr in DELAYS.items())
    return (f"SELECT COALESCE(pbx, '') AS pbx, trunk AS trunk, {_OUTCOME}, COALESCE({DURATION}, 0) AS dur, {values}, "
            f"{sign:d} AS sign FROM {source} WHERE {where}")


def _upserts(source: str, hour: str, lateral: bool = False, ladder: Callable[[str], str] = bucket) -> list[str]:
    ordered = ", ".join(str(i) for i in range(1, len(COUNT_KEY) + 1))  # one lock order for concurrent writers
    counts = (f"INSERT INTO quality_hourly ({', '.join(COUNT_KEY)}, n, dur_sum) SELECT * FROM "
              f"({counts_select(source, hour)}) c WHERE true ORDER BY {ordered} "
              f"ON CONFLICT ({', '.join(COUNT_KEY)}) DO UPDATE SET n = quality_hourly.n + excluded.n, "
              "dur_sum = quality_hourly.dur_sum + excluded.dur_sum")
    delays = (f"INSERT INTO quality_hourly_delay ({', '.join(DELAY_KEY)}, n) SELECT * FROM "
              f"({delays_select(source, hour, lateral=lateral, ladder=ladder)}) d WHERE true ORDER BY 1, 2, 3, 4, 5, 6 "
              f"ON CONFLICT ({', '.join(DELAY_KEY)}) DO UPDATE SET n = quality_hourly_delay.n + excluded.n")
    return [counts, delays]


#: The blocks PostgreSQL keeps besides the hours, in hours: aligned on UTC midnight, each the next one's divisor.
SPANS = (6, 24)


#: The advisory lock between the sealer (exclusive) and the rollup trigger (shared): an arbitrary fixed key.
SEAL_LOCK = 7_140_211


def cover(first: int, last: int, spans: tuple[int, ...] = SPANS,
          sealed: Mapping[int, int] | None = None) -> list[tuple[int, int]]:
    """The hours [first, last) as the fewest aligned blocks, greedily from the start: (span, first hour) with span 1
    for a single hour; `spans` are the block lengths kept besides the hours, `sealed` the hour up to which each
    length's blocks are sealed (all of them when not given)."""
    lengths = sorted(spans, reverse=True)
    limit = {n: last if sealed is None else min(last, sealed.get(n, 0)) for n in lengths}
    out: list[tuple[int, int]] = []
    hour = first
    while hour < last:
        span = next((n for n in lengths if hour % n == 0 and hour + n <= limit[n]), 1)
        out.append((span, hour))
        hour += span
    return out


#: What reading a unit costs, relative to an hour, by its length: a block holds more buckets than an hour but far
#: fewer than its hours together (with delays that vary leg by leg a trunk's histogram nears its few hundred buckets
#: within an hour or two; measured at 10 M rows of 40 trunks: ~13,100 histogram rows an hour, ~17,100 a 6-hour block,
#: ~17,600 a day).
UNIT_COST = {1: 1.0, 6: 1.3, 24: 1.35}


def signed_cover(first: int, last: int, spans: tuple[int, ...] = SPANS,
                 sealed: Mapping[int, int] | None = None) -> list[tuple[int, int, int]]:
    """The hours [first, last) as the cheapest sum of aligned blocks and hours, each added (+1) or taken away (-1):
    (span, first hour, sign). A block may reach outside the range when the hours it holds outside are taken away
    and that reads less (a day less one 6-hour block instead of three blocks; a 6-hour block less two hours instead
    of four hours). `sealed` as in `cover`: only sealed blocks are read. The cost of a unit is `UNIT_COST`'s."""
    lengths = sorted(spans, reverse=True)

    def usable(n: int, hour: int) -> bool:
        return sealed is None or hour + n <= sealed.get(n, 0)

    def cost(units: list[tuple[int, int, int]]) -> float:
        return sum(UNIT_COST.get(n, 1.5) for n, _, _ in units)

    def negated(units: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
        return [(n, h, -s) for n, h, s in units]

    def best(a: int, b: int, level: int) -> list[tuple[int, int, int]]:
        if a >= b:
            return []
        if level == len(lengths):
            return [(1, h, 1) for h in range(a, b)]
        n = lengths[level]
        options = [best(a, b, level + 1)]
        start, end = -(-a // n) * n, b // n * n  # the whole blocks inside
        if start <= end:
            stop = start
            while stop < end and usable(n, stop):
                stop += n
            options.append(fringe(a, start, n, level, left=True) + [(n, h, 1) for h in range(start, stop, n)]
                           + fringe(stop, b, n, level, left=False))
        else:  # inside one block: the block less what lies outside the range, if it reads less
            block = a // n * n
            if usable(n, block):
                options.append([(n, block, 1)] + negated(best(block, a, level + 1) + best(b, block + n, level + 1)))
        return min(options, key=cost)

    def fringe(a: int, b: int, n: int, level: int, left: bool) -> list[tuple[int, int, int]]:
        """[a, b) beside whole blocks of length n: in finer units, or (if shorter than a block) the block holding it
        less the rest of that block."""
        finer = best(a, b, level + 1)
        if a >= b or b - a >= n:
            return finer
        block = (b - n) if left else a
        if block % n or not usable(n, block):
            return finer
        rest = best(block, a, level + 1) if left else best(b, block + n, level + 1)
        return min([finer, [(n, block, 1)] + negated(rest)], key=cost)

    return best(first, last, 0)


def _late_span_upserts(hourly_counts: str, hourly_delays: str) -> list[str]:
    """The trigger's upserts into the blocks, from the batch's hourly aggregates (CTE names), for the rows whose
    block is already sealed (`sealed`: the watermarks read in the same statement); none in the usual live batch."""
    count_key = ", ".join(COUNT_KEY[1:])
    delay_key = ", ".join(DELAY_KEY[1:])
    counts = (f"INSERT INTO quality_span (span, {', '.join(COUNT_KEY)}, n, dur_sum) "
              f"SELECT s.span, c.hour / s.span * s.span, {', '.join('c.' + k for k in COUNT_KEY[1:])}, SUM(c.n), "
              f"SUM(c.dur_sum) FROM {hourly_counts} c JOIN sealed s ON c.hour < s.until_hour "
              f"GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 "
              f"ON CONFLICT (span, hour, {count_key}) DO UPDATE SET n = quality_span.n + excluded.n, "
              "dur_sum = quality_span.dur_sum + excluded.dur_sum")
    delays = (f"INSERT INTO quality_span_delay (span, {', '.join(DELAY_KEY)}, n) "
              f"SELECT s.span, d.hour / s.span * s.span, {', '.join('d.' + k for k in DELAY_KEY[1:])}, SUM(d.n) "
              f"FROM {hourly_delays} d JOIN sealed s ON d.hour < s.until_hour "
              "GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7 "
              f"ON CONFLICT (span, hour, {delay_key}) DO UPDATE SET n = quality_span_delay.n + excluded.n")
    return [counts, delays]


def seal_statements(span: int, start: int | str, end: int | str) -> list[str]:
    """The blocks of `span` hours in [start, end) (aligned) counted from the next finer level (the hours, or for a
    day its 6-hour blocks), replacing whatever they held, and the watermark moved to `end`. The rows go in in the
    primary key's order, so that a block read in that order (`pbx_codes.store.quality_sql`) reads its pages in turn.
    Run in one transaction holding `SEAL_LOCK` exclusively. The bounds are whole hours, or (the migration) an SQL
    expression of our own."""
    finer = SPANS[SPANS.index(span) - 1] if SPANS.index(span) else 1
    counts_from = "quality_hourly WHERE true" if finer == 1 else f"quality_span WHERE span = {finer:d}"
    delays_from = "quality_hourly_delay WHERE true" if finer == 1 else f"quality_span_delay WHERE span = {finer:d}"
    rows = f"hour >= {start} AND hour < {end}"
    counts = ", ".join(COUNT_KEY[1:])
    delays = ", ".join(DELAY_KEY[1:])
    return [
        f"DELETE FROM quality_span WHERE span = {span:d} AND {rows}",
        f"DELETE FROM quality_span_delay WHERE span = {span:d} AND {rows}",
        f"INSERT INTO quality_span (span, hour, {counts}, n, dur_sum) SELECT {span:d}, hour / {span:d} * {span:d}, "
        f"{counts}, SUM(n), SUM(dur_sum) FROM {counts_from} AND {rows} GROUP BY 2, 3, 4, 5, 6, 7, 8, 9, 10 "
        "ORDER BY 2, 3, 4, 5, 6, 7, 8, 9, 10",
        f"INSERT INTO quality_span_delay (span, hour, {delays}, n) SELECT {span:d}, hour / {span:d} * {span:d}, "
        f"{delays}, SUM(n) FROM {delays_from} AND {rows} GROUP BY 2, 3, 4, 5, 6, 7 ORDER BY 2, 3, 4, 5, 6, 7",
        f"UPDATE quality_sealed SET until_hour = {end} WHERE span = {span:d}",
    ]


def _span_tables() -> list[str]:
    text = "TEXT NOT NULL"
    return [
        f"CREATE TABLE IF NOT EXISTS quality_span (span INTEGER NOT NULL, hour BIGINT NOT NULL, instance {text}, "
        f"pbx {text}, trunk {text}, category {text}, outcome {text}, sip {text}, code {text}, phrase {text}, "
        f"n BIGINT NOT NULL, dur_sum DOUBLE PRECISION NOT NULL, PRIMARY KEY (span, {', '.join(COUNT_KEY)}))",
        f"CREATE TABLE IF NOT EXISTS quality_span_delay (span INTEGER NOT NULL, hour BIGINT NOT NULL, "
        f"instance {text}, pbx {text}, trunk {text}, measure {text}, ms BIGINT NOT NULL, n BIGINT NOT NULL, "
        f"PRIMARY KEY (span, {', '.join(DELAY_KEY)}))",
        "CREATE TABLE IF NOT EXISTS quality_sealed (span INTEGER PRIMARY KEY, until_hour BIGINT NOT NULL)",
    ]


def _postgres_span_function(hour: str) -> str:
    """The statement trigger's function with the blocks: `SEAL_LOCK` held shared; the batch aggregated to hours once
    (two CTEs), upserted into the hours and, for the rows of sealed blocks only, into the blocks."""
    ordered = ", ".join(str(i) for i in range(1, len(COUNT_KEY) + 1))
    counts = (f"INSERT INTO quality_hourly ({', '.join(COUNT_KEY)}, n, dur_sum) SELECT * FROM hc ORDER BY {ordered} "
              f"ON CONFLICT ({', '.join(COUNT_KEY)}) DO UPDATE SET n = quality_hourly.n + excluded.n, "
              "dur_sum = quality_hourly.dur_sum + excluded.dur_sum")
    delays = (f"INSERT INTO quality_hourly_delay ({', '.join(DELAY_KEY)}, n) SELECT * FROM hd "
              "ORDER BY 1, 2, 3, 4, 5, 6 "
              f"ON CONFLICT ({', '.join(DELAY_KEY)}) DO UPDATE SET n = quality_hourly_delay.n + excluded.n")
    span_counts, span_delays = _late_span_upserts("hc", "hd")
    body = (f"WITH hc AS MATERIALIZED ({counts_select('new_rows', hour)}), "
            f"hd AS MATERIALIZED ({delays_select('new_rows', hour, lateral=True)}), "
            "sealed AS MATERIALIZED (SELECT span, until_hour FROM quality_sealed), "
            f"a AS ({counts}), b AS ({delays}), c AS ({span_counts}) {span_delays}")
    return ("CREATE OR REPLACE FUNCTION pbx_codes_quality_rollup() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN "
            f"PERFORM pg_advisory_xact_lock_shared({SEAL_LOCK:d}); " + body + "; RETURN NULL; END $fn$")


def postgres_span_statements() -> list[str]:
    """The blocks' tables, the blocks that ended before the migration's hour sealed from the hourly rollup, and the
    trigger's function replaced."""
    now_hour = "CAST(FLOOR(EXTRACT(EPOCH FROM now()) / 3600) AS BIGINT)"
    out = [*_span_tables(),
           *(f"INSERT INTO quality_sealed VALUES ({n:d}, 0) ON CONFLICT (span) DO NOTHING" for n in SPANS)]
    for n in SPANS:  # a day from the 6-hour blocks just made
        out += seal_statements(n, 0, f"{now_hour} / {n:d} * {n:d}")
    return [*out, _postgres_span_function(hour_of("postgresql"))]


def _tables(real: str) -> list[str]:
    text = "TEXT NOT NULL"
    return [
        f"CREATE TABLE IF NOT EXISTS quality_hourly (hour BIGINT NOT NULL, instance {text}, pbx {text}, "
        f"trunk {text}, category {text}, outcome {text}, sip {text}, code {text}, phrase {text}, "
        f"n BIGINT NOT NULL, dur_sum {real} NOT NULL, PRIMARY KEY ({', '.join(COUNT_KEY)}))",
        f"CREATE TABLE IF NOT EXISTS quality_hourly_delay (hour BIGINT NOT NULL, instance {text}, pbx {text}, "
        f"trunk {text}, measure {text}, ms BIGINT NOT NULL, n BIGINT NOT NULL, PRIMARY KEY ({', '.join(DELAY_KEY)}))",
    ]


_ROW_COLUMNS = ("ts", "instance", "pbx", "trunk", "attempt", "category", "outcome", "sip", "code", "phrase",
                "started_at", "progress_at", "answered_at", "ended_at")


def _sqlite_trigger(hour: str, ladder: Callable[[str], str]) -> str:
    new_row = "(SELECT " + ", ".join(f"NEW.{c} AS {c}" for c in _ROW_COLUMNS) + ")"
    return ("CREATE TRIGGER IF NOT EXISTS hangups_quality AFTER INSERT ON hangups WHEN NEW.trunk IS NOT NULL AND "
            "NEW.trunk <> '' AND NEW.attempt IS NOT NULL BEGIN "
            + "; ".join(_upserts(new_row, hour, ladder=ladder)) + "; END")


def _postgres_function(hour: str, ladder: Callable[[str], str]) -> str:
    return ("CREATE OR REPLACE FUNCTION pbx_codes_quality_rollup() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN "
            + "; ".join(_upserts("new_rows", hour, lateral=True, ladder=ladder)) + "; RETURN NULL; END $fn$")


def sqlite_statements(ladder: Callable[[str], str] = bucket) -> list[str]:
    """Tables, the existing rows counted once, and the row trigger that counts each new one."""
    hour = hour_of("sqlite")
    return [*_tables("REAL"), *_upserts("hangups", hour, ladder=ladder), _sqlite_trigger(hour, ladder)]


def postgres_statements(ladder: Callable[[str], str] = bucket) -> list[str]:
    """Tables, the existing rows counted once, and a statement trigger: one aggregated upsert per INSERT."""
    hour = hour_of("postgresql")
    return [*_tables("DOUBLE PRECISION"), *_upserts("hangups", hour, lateral=True, ladder=ladder),
            _postgres_function(hour, ladder),
            "CREATE OR REPLACE TRIGGER hangups_quality AFTER INSERT ON hangups REFERENCING NEW TABLE AS new_rows "
            "FOR EACH STATEMENT EXECUTE FUNCTION pbx_codes_quality_rollup()"]


def sqlite_rebucket_statements() -> list[str]:
    """The delays' histograms recounted from the rows in `bucket`s, and the trigger replaced to count new rows so."""
    hour = hour_of("sqlite")
    return ["DELETE FROM quality_hourly_delay", _upserts("hangups", hour)[1], "DROP TRIGGER IF EXISTS hangups_quality",
            _sqlite_trigger(hour, bucket)]


def postgres_rebucket_statements() -> list[str]:
    """As `sqlite_rebucket_statements`; the statement trigger keeps calling the replaced function."""
    hour = hour_of("postgresql")
    return ["DELETE FROM quality_hourly_delay", _upserts("hangups", hour, lateral=True)[1],
            _postgres_function(hour, bucket)]


def retire_statements(first_kept_hour: int, spans: bool = False) -> list[tuple[str, list[int]]]:
    """Retention: the rollup's hours before the first hour kept (and with `spans`, PostgreSQL's blocks that begin
    before it: its retention keeps whole days, so no block is cut)."""
    out = [(f"DELETE FROM {table} WHERE hour < ?", [first_kept_hour])
           for table in ("quality_hourly", "quality_hourly_delay")]
    lengths = ", ".join(str(n) for n in SPANS)  # the key's first column: each length's old blocks by the index
    return out + [(f"DELETE FROM {table} WHERE span IN ({lengths}) AND hour < ?", [first_kept_hour])
                  for table in (("quality_span", "quality_span_delay") if spans else ())]


__all__ = ["ANSWERED", "COUNT_KEY", "DELAYS", "DELAY_KEY", "DURATION", "EXACT_MS", "HOUR", "PDD", "SEAL_LOCK",
           "SEIZURE", "SPANS", "SRD", "bucket", "bucket_middle", "bucket_of", "bucket_width", "counts_select", "cover",
           "delays_select", "edge_rows", "hour_of", "nearest_ms", "postgres_rebucket_statements",
           "postgres_span_statements", "postgres_statements", "retire_statements", "seal_statements",
           "UNIT_COST", "signed_cover", "sqlite_rebucket_statements", "sqlite_statements", "whole_ms"]
