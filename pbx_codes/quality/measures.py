"""The measures over a set of legs: counts, ratios and distributions, per trunk (or any grouping).

Definitions (the README has one line each, with the source):
- seizures: outbound attempts on the trunk, those that never reached the carrier included (a gateway marked down,
  the PBX's own limit: the route chose the trunk); answered: seizures answered; ASR = answered / seizures (ITU-T
  E.411);
- NER = seizures whose class counts for NER (answered, busy, no answer, rejected, abandoned, wrong number) /
  seizures (ITU-T E.425): an attempt that never reached the carrier is a network failure;
- invites: the seizures that sent an INVITE; SER = 200 / (invites - 3xx); SEER = (200, 480, 486, 600, 603) /
  (invites - 3xx); ISA = (408, 500, 503, 504) / invites (RFC 6076 4.6, 4.7, 4.8); the code sets are data
  (`classes`);
- SRD (RFC 6076 4.3), PDD (dial -> first ringing/progress) and call duration as distributions; ACD = mean duration of
  answered seizures (ITU-T E.411 family, "average call duration").
Percentiles interpolate linearly between the closest ranks (the common "linear" method).
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pbx_codes.quality.classes import NOT_SENT, ClassTable
from pbx_codes.quality.legs import Leg

TOP_FAILURES = 5


def percentile(values: Sequence[float], q: float, *, presorted: bool = False) -> float | None:
    """The q-th percentile (0..100) of `values`, linear between closest ranks; None for no values."""
    if not values:
        return None
    ordered = values if presorted else sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den > 0 else None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def _s(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 6)


@dataclass(slots=True)
class TrunkQuality:
    """Running totals for one group of seizures (a trunk, a trunk in one hour, ...)."""

    table: ClassTable
    pbx: str = ""
    trunk: str = ""
    seizures: int = 0
    answered: int = 0
    ner_hits: int = 0
    classes: Counter[str] = field(default_factory=Counter)
    responses: Counter[str] = field(default_factory=Counter)
    failures: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    pdd: list[float] = field(default_factory=list)
    srd: list[float] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)

    def add(self, leg: Leg) -> None:
        if not leg.seizure:
            return
        cls = self.table.classify(leg.category)
        self.seizures += 1
        self.classes[cls.name] += 1
        self.ner_hits += cls.ner
        answered = leg.answered
        self.answered += answered
        self.responses["200" if answered else self.table.response(leg.sip, leg.outcome, leg.code)] += 1
        if not answered:
            self.failures[(leg.category, leg.code or leg.sip or "", leg.phrase or "")] += 1
        for bucket, value in ((self.pdd, leg.pdd()), (self.srd, leg.srd()), (self.durations, leg.duration())):
            if value is not None:
                bucket.append(value)

    def result(self) -> dict[str, Any]:
        """The measures as one JSON-ready object (ratios None when there is nothing to divide by)."""
        n, r = self.seizures, self.responses
        invites = n - r[NOT_SENT]
        not_redirected = invites - r["redirect"]
        acd = sum(self.durations) / len(self.durations) if self.durations else None
        return {
            "pbx": self.pbx, "trunk": self.trunk, "seizures": n, "invites": invites, "answered": self.answered,
            "asr": _ratio(self.answered, n), "ner": _ratio(self.ner_hits, n),
            "ser": _ratio(r["200"], not_redirected), "seer": _ratio(r["200"] + r["effective"], not_redirected),
            "isa": _ratio(r["ineffective"], invites),
            "pdd_p50_ms": _ms(percentile(self.pdd, 50)), "pdd_p95_ms": _ms(percentile(self.pdd, 95)),
            "srd_p50_ms": _ms(percentile(self.srd, 50)), "srd_p95_ms": _ms(percentile(self.srd, 95)),
            "acd_s": _s(acd), "duration_p50_s": _s(percentile(self.durations, 50)),
            "duration_p95_s": _s(percentile(self.durations, 95)),
            "timed": {"pdd": len(self.pdd), "srd": len(self.srd), "duration": len(self.durations)},
            "classes": dict(sorted(self.classes.items())),
            "top_failures": [{"category": c, "code": code or None, "phrase": p or None, "count": k}
                             for (c, code, p), k in sorted(self.failures.items(), key=lambda i: (-i[1], i[0]))
                             [:TOP_FAILURES]],
        }


def trunk_key(leg: Leg) -> tuple[str, ...]:
    return (leg.pbx, leg.trunk)


def per_trunk(legs: Iterable[Leg], table: ClassTable,
              key: Callable[[Leg], tuple[Any, ...]] = trunk_key) -> list[dict[str, Any]]:
    """One result per group of seizures (per (pbx, trunk) by default), in key order; the key's extra parts (a time
    bucket) come back as ``bucket``."""
    groups: dict[tuple[Any, ...], TrunkQuality] = {}
    for leg in legs:
        if not leg.seizure:
            continue
        k = key(leg)
        group = groups.get(k)
        if group is None:
            group = groups[k] = TrunkQuality(table, pbx=str(k[0]), trunk=str(k[1]))
        group.add(leg)
    out = []
    for k in sorted(groups, key=lambda x: tuple(str(p) for p in x)):
        result = groups[k].result()
        if len(k) > 2:
            result["bucket"] = k[2]
        out.append(result)
    return out


def bucketed(seconds: int) -> Callable[[Leg], tuple[Any, ...]]:
    """A key: (pbx, trunk, start of the `seconds`-long bucket the leg ended in, UTC-aligned)."""
    def key(leg: Leg) -> tuple[Any, ...]:
        return (leg.pbx, leg.trunk, int(leg.ts // seconds * seconds))
    return key


__all__ = ["TrunkQuality", "bucketed", "per_trunk", "percentile", "trunk_key"]
