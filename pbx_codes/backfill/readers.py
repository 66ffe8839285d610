"""CDR files -> Observations, per PBX, through the observers' own functions.

FreeSWITCH: mod_json_cdr documents (one per file, or JSON lines; values URL-encoded or not, see
`pbx_codes.observers.freeswitch_cdr`) and mod_cdr_csv lines in the project's ``pbx_codes`` template. The legs of all
the files are correlated like live events (B-legs before the A-leg that bridged them, attempts in order), so an
A-leg gets its carrier's trunk and catalog as the listener gives it.

Asterisk: the project's cdr_custom ``pbx_codes.csv`` (no header) or ``pbx_codes.json`` (one object per line). Each
record with a dialed channel is one dialed leg, named as the live observer names it (linkedid + dialed channel).
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pbx_codes.enrich.mapping import FS_CDR_CSV_COLUMNS, PBX_CDR_CUSTOM_LAYOUTS
from pbx_codes.enrich.tolerant_csv import split_line
from pbx_codes.errors import InputError
from pbx_codes.model import Observation, Outcome, Side
from pbx_codes.observers import freeswitch_cdr
from pbx_codes.observers.asterisk import parse_tech_cause
from pbx_codes.observers.asterisk import trunk_of as asterisk_trunk_of
from pbx_codes.observers.asterisk_causes import DIAL_STATUS_OUTCOME
from pbx_codes.observers.freeswitch import FreeswitchObserver

PBXS = ("asterisk", "freeswitch")
_JSON_SUFFIXES = (".json", ".jsonl")
_CSV_SUFFIXES = (".csv",)


class BackfillError(InputError):
    """A path that cannot be read as the PBX's CDRs."""


@dataclass
class BackfillStats:
    files: int = 0
    records: int = 0
    legs: int = 0
    malformed: int = 0
    skipped: int = 0


def cdr_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files named, and the CDR files (``*.json``, ``*.jsonl``, ``*.csv``) under folders named, in name order."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file()
                              and p.suffix.lower() in _JSON_SUFFIXES + _CSV_SUFFIXES))
        elif path.is_file():
            out.append(path)
        else:
            raise BackfillError(f"{path}: no such file or folder")
    return out


def _json_documents(path: Path, stats: BackfillStats) -> Iterator[dict[str, Any]]:
    data = path.read_bytes()
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        yield doc
        return
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            stats.malformed += 1
            continue
        if isinstance(item, dict):
            yield item
        else:
            stats.malformed += 1


def _looks_json(path: Path) -> bool:
    if path.suffix.lower() in _JSON_SUFFIXES:
        return True
    if path.suffix.lower() in _CSV_SUFFIXES:
        return False
    with path.open("rb") as f:
        return f.read(64).lstrip()[:1] in (b"{", b"[")


def _csv_records(path: Path, columns: tuple[str, ...] | Mapping[int, tuple[str, ...]],
                 stats: BackfillStats) -> Iterator[dict[str, str]]:
    """Records of a headerless CSV whose layout is `columns`, or one of several told apart by their field count."""
    layouts = columns if isinstance(columns, Mapping) else {len(columns): columns}
    with path.open("rb") as f:
        for raw in f:
            body = raw.rstrip(b"\r\n")
            if not body.strip():
                continue
            fields = split_line(body, set(layouts))
            if fields is None:
                stats.malformed += 1
                continue
            names = layouts[len(fields)]
            yield {name: value.decode("utf-8", "replace") for name, value in zip(names, fields)}


# -- FreeSWITCH -----------------------------------------------------------------------------------------------------

def freeswitch_observations(files: Iterable[Path], stats: BackfillStats) -> list[Observation]:
    legs: list[dict[str, str]] = []
    for path in files:
        stats.files += 1
        if _looks_json(path):
            for doc in _json_documents(path, stats):
                stats.records += 1
                variables = freeswitch_cdr.variables_from_json_cdr(doc)
                if variables is None:
                    stats.malformed += 1
                else:
                    legs.append(variables)
        else:
            for record in _csv_records(path, FS_CDR_CSV_COLUMNS, stats):
                stats.records += 1
                legs.append(freeswitch_cdr.variables_from_cdr_csv(record))
    observer = FreeswitchObserver(report_answered=True, memory=max(20000, 4 * len(legs)))
    out: list[Observation] = []
    # As live: each leg's creation teaches the observer its call's gateway and attempt order, then the hangups.
    for variables in sorted(legs, key=freeswitch_cdr.leg_start):
        observer.feed_variables("CHANNEL_CREATE", variables)
    for variables in sorted(legs, key=freeswitch_cdr.leg_end):
        found = observer.feed_variables("CHANNEL_HANGUP_COMPLETE", variables)
        if not found:
            stats.skipped += 1
        out.extend(found)
    stats.legs = len(out)
    return out


# -- Asterisk -------------------------------------------------------------------------------------------------------

def _asterisk_time(value: str | None) -> float | None:
    """cdr_custom's ``2026-11-23 08:34:50`` (local time, as Asterisk writes it) or an epoch number."""
    if not value:
        return None
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return time.mktime(time.strptime(text[:19], "%Y-%m-%d %H:%M:%S"))
    except ValueError:
        return None


#: The project's cdr_custom layouts, by field count: the first release's, and the one with the outcome fields the
#: FastAGI annotation writes (pbx_hangup_by ... pbx_attempts); `enrich` reads the same ones.
ASTERISK_CDR_LAYOUTS: Mapping[int, tuple[str, ...]] = PBX_CDR_CUSTOM_LAYOUTS
_OUTCOMES = {o.value: o for o in Outcome}
_SIDES = {s.value: s for s in Side}


def _small(value: str | None) -> int | None:
    text = (value or "").strip()
    return int(text) if text.isdecimal() and len(text) <= 4 else None


def asterisk_observation(record: dict[str, str], catalog: str | None = None) -> Observation | None:
    """One cdr_custom record of a Dial -> the dialed leg's Observation (None: no dialed leg in the record).

    Where the FastAGI annotation ran, its verdict is in the record (pbx_outcome, pbx_hangup_by, pbx_attempt,
    pbx_q850_observed) and is taken as the live path decided it; otherwise it is worked out from the dial status and
    ``pbx_rawcause``, which the dialplan writes even when pbx-codes is down. An attempt that created no channel (its
    trunk marked down) is a leg only when the annotation numbered it."""
    dialed = (record.get("dstchannel") or "").strip()
    linkedid = (record.get("linkedid") or record.get("uniqueid") or "").strip()
    attempt = _small(record.get("pbx_attempt"))
    if not linkedid or not (dialed or attempt):
        return None
    status = (record.get("pbx_dialstatus") or record.get("disposition") or "").strip().upper()
    outcome = _OUTCOMES.get((record.get("pbx_outcome") or "").strip()) or DIAL_STATUS_OUTCOME.get(status)
    code, phrase = parse_tech_cause(record.get("pbx_rawcause"))
    if outcome is Outcome.ANSWERED:
        code, phrase = "200", None
    elif outcome is Outcome.CALLER_CANCEL:
        code, phrase = "487", None
    elif code is not None and int(code) < 300:
        code, phrase = None, None
    answered = _asterisk_time(record.get("answer"))
    hangup_by = _SIDES.get((record.get("pbx_hangup_by") or "").strip()) or (
        Side.CALLER if outcome is Outcome.CALLER_CANCEL else None)
    q850 = _small(record.get("pbx_q850_observed"))
    exact = (record.get("pbx_exact") or "").strip()
    return Observation(
        sip_code=code, phrase=phrase, catalog=(record.get("pbx_catalog") or catalog or None),
        trunk=(record.get("pbx_trunk") or asterisk_trunk_of(dialed or None)), pbx="asterisk", call_id=linkedid,
        channel=dialed or None, number=(record.get("dst") or None), dial_status=status or None,
        q850=q850 if q850 is not None and q850 <= 127 else None, certain=exact != "0" or code is None,
        attempt=attempt, hangup_by=hangup_by, outcome=outcome,
        method="INVITE" if code and code >= "300" else None, timestamp=_asterisk_time(record.get("end")),
        started_at=_asterisk_time(record.get("start")), answered_at=answered,
        ended_at=_asterisk_time(record.get("end")),
    )


def asterisk_observations(files: Iterable[Path], stats: BackfillStats) -> list[Observation]:
    out: list[Observation] = []
    for path in files:
        stats.files += 1
        records: Iterable[dict[str, Any]] = (_json_documents(path, stats) if _looks_json(path)
                                   else _csv_records(path, ASTERISK_CDR_LAYOUTS, stats))
        for record in records:
            stats.records += 1
            obs = asterisk_observation({k: "" if v is None else str(v) for k, v in record.items()})
            if obs is None:
                stats.skipped += 1
            else:
                out.append(obs)
    stats.legs = len(out)
    return out


def read_observations(pbx: str, paths: Iterable[str | Path], stats: BackfillStats | None = None
                      ) -> tuple[list[Observation], BackfillStats]:
    """Every leg the CDR files under `paths` hold, as the live path would observe it."""
    stats = stats or BackfillStats()
    files = cdr_files(paths)
    try:
        if pbx == "freeswitch":
            return freeswitch_observations(files, stats), stats
        if pbx == "asterisk":
            return asterisk_observations(files, stats), stats
    except OSError as exc:
        raise BackfillError(f"{exc.filename}: cannot be read: {exc.strerror or exc}") from None
    raise BackfillError(f"unknown PBX {pbx!r}; one of {', '.join(PBXS)}")


__all__ = ["BackfillError", "BackfillStats", "PBXS", "asterisk_observation", "cdr_files", "read_observations"]
