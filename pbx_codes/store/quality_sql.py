"""The trunk quality table computed inside PostgreSQL: the same measures as `pbx_codes.quality.measures.per_trunk`
over the same legs, without carrying every leg into Python.

Two queries: the seizures counted per (pbx, trunk, category, outcome, SIP code, code, phrase), from which the class
table gives classes, NER, answers, RFC 6076 responses and top failures exactly as `TrunkQuality.add` does; and per
(pbx, trunk) the delays' percentiles (`percentile_cont`: linear between the closest ranks, as `percentile`) and
the mean duration. The delays are the definitions of `pbx_codes.quality.legs` written in SQL.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pbx_codes.quality.classes import ClassTable
from pbx_codes.quality.legs import NO_RESPONSE_OUTCOMES
from pbx_codes.quality.measures import TrunkQuality, _ms, _s

_ANSWERED = "(category = 'ok' OR outcome = 'answered')"
_NO_RESPONSE = ", ".join(f"'{o}'" for o in sorted(NO_RESPONSE_OUTCOMES))


def _delay(start: str, end: str) -> str:
    return f"CASE WHEN {start} IS NOT NULL AND {end} IS NOT NULL AND {end} >= {start} THEN {end} - {start} END"


_PDD = ("CASE WHEN started_at IS NOT NULL THEN "
        + _delay("started_at", f"COALESCE(progress_at, CASE WHEN {_ANSWERED} THEN answered_at END)") + " END")
_SRD = ("CASE WHEN started_at IS NULL THEN NULL "
        f"WHEN progress_at IS NOT NULL THEN {_delay('started_at', 'progress_at')} "
        f"WHEN {_ANSWERED} THEN {_delay('started_at', 'answered_at')} "
        f"WHEN outcome IN ({_NO_RESPONSE}) OR category IN ('cancelled', 'pending') THEN NULL "
        f"ELSE {_delay('started_at', 'ended_at')} END")
_DURATION = f"CASE WHEN {_ANSWERED} THEN {_delay('answered_at', 'ended_at')} END"


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


async def trunk_quality(backend: Any, table: ClassTable, since: float, until: float, *, pbx: str | None = None,
                        trunk: str | None = None, instance: str | None = None) -> list[dict[str, Any]]:
    """`per_trunk`'s results for the seizures that ended in [since, until), per (pbx, trunk), in its order."""
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
        n = int(n)
        cls = table.classify(category)
        group.seizures += n
        group.classes[cls.name] += n
        group.ner_hits += cls.ner * n
        answered = category == "ok" or outcome == "answered"
        group.answered += answered * n
        group.responses["200" if answered else table.response(sip, outcome, code)] += n
        if not answered:
            group.failures[(category, code or sip or "", phrase or "")] += n
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


__all__ = ["same_measures", "trunk_quality"]
