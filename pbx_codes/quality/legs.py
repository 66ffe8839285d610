"""One leg's facts for the quality measures, from a live annotation, a store row or a CDR row.

A leg is a *seizure* (an outbound attempt on a trunk) when it has a trunk and the observer numbered it as an
attempt (``Observation.attempt``); the caller's own leg carries no attempt number and is not counted, so a bridged
call is one seizure per trunk leg, never two. CDR rows decide it from their own columns (a dialed channel or a
gateway of their own).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pbx_codes.model import Annotation, Outcome

#: Outcomes after which no response from the carrier arrived: no response delay to measure.
NO_RESPONSE_OUTCOMES = frozenset({Outcome.CALLER_CANCEL.value, Outcome.LOCAL_RESPONSE.value,
                                  Outcome.UNREACHABLE.value, Outcome.PBX_LIMIT.value})


@dataclass(frozen=True, slots=True)
class Leg:
    pbx: str
    trunk: str
    ts: float
    category: str
    sip: str | None = None
    code: str | None = None
    phrase: str | None = None
    catalog: str | None = None
    outcome: str | None = None
    seizure: bool = True
    started_at: float | None = None
    progress_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    call_id: str | None = None
    leg_id: str | None = None
    #: The agent of a fleet that saw the leg (`instance` in pbx-codes.toml).
    instance: str | None = None

    @property
    def answered(self) -> bool:
        return is_answered(self.category, self.outcome)

    def pdd(self) -> float | None:
        return pdd(self.started_at, self.progress_at, self.answered_at, self.answered)

    def srd(self) -> float | None:
        return srd(self.started_at, self.progress_at, self.answered_at, self.ended_at, self.answered, self.outcome,
                   self.category)

    def duration(self) -> float | None:
        return duration(self.answered_at, self.ended_at, self.answered)


def is_answered(category: str, outcome: str | None) -> bool:
    return category == "ok" or outcome == "answered"


def pdd(started: float | None, progress: float | None, answer: float | None, answered: bool) -> float | None:
    """Post-dial delay (s): dial -> first ringing or progress; an answer without 18x is the first sign."""
    if started is None:
        return None
    return _delay(started, progress if progress is not None else (answer if answered else None))


def srd(started: float | None, progress: float | None, answer: float | None, end: float | None, answered: bool,
        outcome: str | None, category: str) -> float | None:
    """RFC 6076 session request delay (s): INVITE -> first non-100 provisional response, or the final response
    (the answer, or a failure the carrier sent); none when no response came (cancel, local, unreachable)."""
    if started is None:
        return None
    if progress is not None:
        return _delay(started, progress)
    if answered:
        return _delay(started, answer)
    if outcome in NO_RESPONSE_OUTCOMES or category in ("cancelled", "pending"):
        return None
    return _delay(started, end)


def duration(answer: float | None, end: float | None, answered: bool) -> float | None:
    """Answered legs: answer -> end (s)."""
    return _delay(answer, end) if answered else None


def _delay(start: float | None, end: float | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return end - start


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) < 1e11 else None  # NaN and absurd epochs are no timing


def leg_from_annotation(annotation: Annotation) -> Leg:
    """The live path: what an observer saw plus what the catalogs said."""
    obs, res = annotation.observation, annotation.resolution
    return Leg(
        pbx=obs.pbx or "", trunk=obs.trunk or "", ts=float(obs.timestamp or obs.ended_at or 0.0),
        category=res.category.value, sip=res.sip or obs.sip_code, code=res.code, phrase=res.phrase,
        catalog=res.catalog, outcome=obs.outcome.value if obs.outcome else None,
        seizure=bool(obs.trunk) and obs.attempt is not None, started_at=obs.started_at,
        progress_at=obs.progress_at, answered_at=obs.answered_at, ended_at=obs.ended_at, call_id=obs.call_id,
        leg_id=obs.leg_id, instance=obs.instance,
    )


def leg_from_row(row: Mapping[str, Any]) -> Leg:
    """A store row (or an `Annotation.to_dict()` with the timing keys)."""
    ts = _float(row.get("timestamp", row.get("ts"))) or 0.0
    attempt = row.get("attempt")
    return Leg(
        pbx=row.get("pbx") or "", trunk=row.get("trunk") or "", ts=ts, category=row.get("category") or "unknown",
        sip=row.get("sip") or row.get("sip_code"), code=row.get("code"), phrase=row.get("phrase"),
        catalog=row.get("catalog"), outcome=row.get("outcome"),
        seizure=bool(row.get("trunk")) and attempt is not None, started_at=_float(row.get("started_at")),
        progress_at=_float(row.get("progress_at")), answered_at=_float(row.get("answered_at")),
        ended_at=_float(row.get("ended_at")), call_id=row.get("linkedid"), leg_id=row.get("uniqueid"),
        instance=row.get("instance"),
    )


__all__ = ["Leg", "NO_RESPONSE_OUTCOMES", "duration", "is_answered", "leg_from_annotation", "leg_from_row", "pdd",
           "srd"]
