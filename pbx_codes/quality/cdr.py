"""Legs read directly from CDR files through the `enrich` presets, for `pbx-codes report --cdr`.

The cause goes through the same reading as `enrich` (`RowAnnotator.observation`, then the resolver); the timings come
from what each template carries:
- FreeSWITCH: ``start_uepoch``/``progress_uepoch``/``progress_media_uepoch``/``answer_uepoch``/``end_uepoch``
  (or the ``_epoch`` seconds, the json_cdr ``callflow`` times, ``progressmsec``/``progress_mediamsec``/
  ``answermsec`` after the start, and the ``*_stamp`` columns with ``billsec``);
- Asterisk: ``start``/``answer``/``end`` and ``billsec`` (Master.csv has no ringing time, so no PDD from it).
Stamps without a zone are read as UTC. A row is a seizure when it names its own trunk leg: an Asterisk row with a
dialed channel (or an attempt the FastAGI annotation numbered: ``pbx_attempt``, with its ``pbx_outcome``), a
FreeSWITCH leg with its own gateway that is not inbound.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pbx_codes.enrich.interpret import RowAnnotator
from pbx_codes.enrich.mapping import FIELDS, Preset
from pbx_codes.enrich.tolerant_csv import split_line
from pbx_codes.model import Observation, Outcome
from pbx_codes.observers.channels import trunk_of_channel
from pbx_codes.quality.legs import Leg

FILE_KINDS = ("csv", "json")
_OUTCOMES = {o.value: o for o in Outcome}


@dataclass(slots=True)
class CdrReadStats:
    rows: int = 0
    malformed: int = 0


def _number(value: Any) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and 0 < number < 1e17 else None


def _micro(value: Any) -> float | None:
    number = _number(value)
    return number / 1_000_000 if number else None


def _stamp(value: Any) -> float | None:
    if not value or not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)


def timings(row: Mapping[str, Any], pbx: str) -> tuple[float | None, float | None, float | None, float | None]:
    """(started, first progress, answered, ended) in epoch seconds, from whatever the row carries."""
    times = row.get("_callflow_times") or {}
    if pbx == "asterisk":
        start, answer, end = _stamp(row.get("start")), _stamp(row.get("answer")), _stamp(row.get("end"))
        progress = None
    else:
        start = _first(_micro(row.get("start_uepoch")), _number(row.get("start_epoch")),
                       _micro(times.get("created_time")), _stamp(row.get("start_stamp")))
        progress_marks = [p for p in (_micro(row.get("progress_uepoch")), _micro(row.get("progress_media_uepoch")),
                                      _micro(times.get("progress_time")), _micro(times.get("progress_media_time")))
                          if p is not None]
        for relative in ("progressmsec", "progress_mediamsec"):
            ms = _number(row.get(relative))
            if ms is not None and start is not None:
                progress_marks.append(start + ms / 1000.0)
        progress = min(progress_marks) if progress_marks else None
        answer = _first(_micro(row.get("answer_uepoch")), _number(row.get("answer_epoch")),
                        _micro(times.get("answered_time")), _stamp(row.get("answer_stamp")))
        if answer is None and start is not None and _number(row.get("answermsec")):
            answer = start + float(row["answermsec"]) / 1000.0
        end = _first(_micro(row.get("end_uepoch")), _number(row.get("end_epoch")),
                     _micro(times.get("hangup_time")), _stamp(row.get("end_stamp")))
    billsec = _number(row.get("billsec"))
    if answer is None and billsec and end is not None:
        answer = end - billsec
    return start, progress, answer, end


def _fields(row: Mapping[str, Any], preset: Preset) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name in FIELDS:
        values = [str(row[c]) for c in preset.mapping.candidates(name) if row.get(c) not in (None, "")]
        if values:
            out[name] = values
    return out


def leg_from_cdr(row: Mapping[str, Any], preset: Preset, annotator: RowAnnotator,
                 resolve: Callable[[Observation], Any]) -> Leg:
    fields = _fields(row, preset)
    channel = next(iter(fields.get("channel", ())), None)
    trunk = next(iter(fields.get("trunk", ())), None) or trunk_of_channel(channel) or ""
    outcome = None
    if preset.pbx == "asterisk":
        # A Dial that created no channel (qualify: Unavailable) is an attempt when the annotation numbered it.
        seizure = bool(row.get("dstchannel") or str(row.get("pbx_attempt") or "").isdecimal()) and bool(trunk)
        answered_flag = str(row.get("disposition", "")).upper() == "ANSWERED"
        outcome = _OUTCOMES.get(str(row.get("pbx_outcome") or ""))  # the annotation's verdict, where it ran
    else:
        own_gateway = row.get("sip_gateway_name") or row.get("pbx_codes_trunk")
        seizure = bool(own_gateway) and str(row.get("direction", "outbound")) != "inbound"
        answered_flag = False
    start, progress, answer, end = timings(row, preset.pbx)
    answered = answered_flag or answer is not None
    if trunk:
        fields["trunk"] = [trunk]  # the dialed channel's trunk picks its bound catalog, as in enrich
    obs, _ = annotator.observation(fields)
    if obs is not None and outcome is not None:
        obs = replace(obs, outcome=outcome)
    if answered:
        category, sip, code, phrase, catalog = "ok", "200", "200", None, (obs.catalog if obs else None)
    elif obs is None:
        category, sip, code, phrase, catalog = "unknown", None, None, None, None
    else:
        ann = resolve(obs)
        category, sip, code, phrase, catalog = ann.category.value, ann.sip or obs.sip_code, ann.code, ann.phrase, \
            ann.catalog
        if category == "ok":  # ended normally, never answered: the call was given up before an answer
            category = "cancelled"
    return Leg(pbx=preset.pbx, trunk=trunk, ts=float(end or start or 0.0), category=category, sip=sip, code=code,
               phrase=phrase, catalog=catalog, outcome=outcome.value if outcome else None, seizure=seizure,
               started_at=start, progress_at=progress,
               answered_at=answer if answered else None, ended_at=end,
               call_id=str(row.get("linkedid") or row.get("call_uuid") or "") or None,
               leg_id=str(row.get("uuid") or row.get("uniqueid") or "") or None)


def _csv_rows(path: Path, preset: Preset, stats: CdrReadStats,
              columns: tuple[str, ...] | None) -> Iterator[dict[str, Any]]:
    names = columns or preset.columns
    with path.open("rb") as handle:
        for raw in handle:
            body = raw.rstrip(b"\r\n")
            if not body.strip():
                continue
            if preset.tolerant:
                fields = split_line(body, None)
                values = [f.decode("utf-8", errors="replace") for f in fields] if fields is not None else None
            else:
                try:
                    values = next(csv.reader([body.decode("utf-8", errors="replace")]), None)
                except csv.Error:
                    values = None
            if values is None:
                stats.malformed += 1
                continue
            if names is None:  # the first row names the columns
                names = tuple(values)
                continue
            if not columns and preset.longer:  # a headerless template's later layouts, told by their length
                names = preset.layouts.get(len(values), names)
            if len(values) < len(names) - 2:  # Master.csv may lack uniqueid/userfield; anything shorter is broken
                stats.malformed += 1
                continue
            stats.rows += 1
            yield dict(zip(names, values))


def _json_documents(path: Path, stats: CdrReadStats) -> Iterator[Any]:
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        yield json.loads(text)
        return
    except json.JSONDecodeError:
        pass
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            stats.malformed += 1


def _json_rows(path: Path, preset: Preset, stats: CdrReadStats) -> Iterator[dict[str, Any]]:
    for doc in _json_documents(path, stats):
        if not isinstance(doc, dict):
            stats.malformed += 1
            continue
        row = dict(doc.get(preset.json_container) or {}) if preset.json_container else dict(doc)
        callflow = doc.get("callflow")
        if isinstance(callflow, list) and callflow:
            callflow = callflow[0]
        if isinstance(callflow, dict) and isinstance(callflow.get("times"), dict):
            row["_callflow_times"] = callflow["times"]
        stats.rows += 1
        yield row


def read_legs(paths: list[Path], preset: Preset, resolve: Callable[[Observation], Any], *,
              columns: tuple[str, ...] | None = None) -> tuple[list[Leg], CdrReadStats]:
    """Every leg of the given CDR files (one preset), and how many rows were read or could not be."""
    if preset.kind not in FILE_KINDS:
        raise ValueError(f"preset {preset.name} is a database table ({preset.kind}); report reads the store or "
                         f"CDR files (csv, json)")
    annotator = RowAnnotator(resolve, pbx=preset.pbx, use_trunk=True)
    stats = CdrReadStats()
    legs: list[Leg] = []
    for path in paths:
        rows = _csv_rows(path, preset, stats, columns) if preset.kind == "csv" else _json_rows(path, preset, stats)
        for row in rows:
            legs.append(leg_from_cdr(row, preset, annotator, resolve))
    return legs, stats


__all__ = ["CdrReadStats", "leg_from_cdr", "read_legs", "timings"]
