"""Test-side: each FreeSWITCH leg's timings and attempt number read straight from the recorded event headers.

The hand computation must not depend on the code under test: this reads the timings the way FreeSWITCH documents
its channel timestamps (``start_uepoch``, ``progress_uepoch``, ``progress_media_uepoch``, ``answer_uepoch``,
``end_uepoch``, in microseconds, on CHANNEL_HANGUP_COMPLETE) and numbers the outbound legs of each call in the order
they were created. The observer fills the same fields itself; `with_facts` only fills what it left empty, and a test
checks that the two agree.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pbx_codes.model import Annotation, Observation
from pbx_codes.observers.freeswitch import FreeswitchObserver, iter_events


def _seconds(value: str | None) -> float | None:
    micro = int(value) if value and value.isdigit() else 0
    return micro / 1_000_000 if micro else None


def leg_facts(data: bytes) -> dict[str, dict]:
    """Per leg uuid: its timings (epoch seconds) and, for an outbound leg, its attempt number within the call."""
    facts: dict[str, dict] = {}
    attempts: dict[str, int] = {}
    for event in iter_events(data):
        h = event.headers
        uuid = h.get("Unique-ID")
        if not uuid:
            continue
        if event.name == "CHANNEL_CREATE" and h.get("Call-Direction") == "outbound":
            call = h.get("variable_call_uuid") or h.get("Channel-Call-UUID") or uuid
            attempts[call] = attempts.get(call, 0) + 1
            facts.setdefault(uuid, {})["attempt"] = attempts[call]
        if event.name == "CHANNEL_HANGUP_COMPLETE":
            progress = [t for t in (_seconds(h.get("variable_progress_uepoch")),
                                    _seconds(h.get("variable_progress_media_uepoch"))) if t]
            facts.setdefault(uuid, {}).update(
                started_at=_seconds(h.get("variable_start_uepoch")), progress_at=min(progress) if progress else None,
                answered_at=_seconds(h.get("variable_answer_uepoch")), ended_at=_seconds(h.get("variable_end_uepoch")))
    return facts


def with_facts(obs: Observation, facts: dict[str, dict]) -> Observation:
    found = facts.get(obs.leg_id or "", {})
    changes = {k: v for k, v in found.items() if getattr(obs, k) is None}
    return replace(obs, **changes) if changes else obs


def annotated_legs(capture: Path, resolver) -> list[Annotation]:
    """Every leg of a capture (answered ones too, as the live listener reports them), with timings and attempts."""
    data = capture.read_bytes()
    facts = leg_facts(data)
    observer = FreeswitchObserver(report_answered=True)
    out = []
    for event in iter_events(data, FreeswitchObserver.WANTED_EVENTS):
        for obs in observer.feed(event):
            out.append(resolver.resolve(with_facts(obs, facts)))
    return out
