"""Helpers for the real-Asterisk integration tests: one call, its CDR record and what pbx-codes did for it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pbx_codes.catalog import Entry, load_catalogs
from pbx_codes.model import Annotation
from pbx_codes.testbed.asterisk import AsteriskBench
from pbx_codes.testbed.inprocess import PbxCodesInProcess
from support.waiting import block_until

CATALOG_DIR = Path(__file__).resolve().parent / "catalogs"
SEED_CATALOGS = ("lifecell", "sipcall")


@dataclass(frozen=True, slots=True)
class CallResult:
    """One bench call: its CDR rows (JSON backend), and the FastAGI commands and failures it cost."""

    rows: list[dict[str, Any]]
    agi_sessions: int
    agi_commands: int
    agi_failed_replies: int

    @property
    def row(self) -> dict[str, Any]:
        assert len(self.rows) == 1, self.rows
        return self.rows[0]


def place(bench: AsteriskBench, pbx: PbxCodesInProcess, code: str | int, phrase: str = "",
          catalog: str | None = None) -> CallResult:
    """Place one call and wait until the FastAGI session of its hangup handler has finished."""
    stats = pbx.agi.stats if pbx.agi is not None else None
    assert stats is not None
    before = (stats.completed + stats.handler_errors, stats.commands, stats.failed_replies)
    rows = bench.place_call(code, phrase, catalog)
    # The CDR is posted after the hangup handler returns, i.e. after the session: this wait is only a safeguard.
    block_until(lambda: stats.completed + stats.handler_errors > before[0], 5, what="the call's FastAGI session ended")
    return CallResult(rows, stats.completed + stats.handler_errors - before[0], stats.commands - before[1],
                      stats.failed_replies - before[2])


def ami_annotations_for(pbx: PbxCodesInProcess, b_channel: str, timeout: float = 5.0) -> list[Annotation]:
    """What the AMI listener published for the dialed leg `b_channel` (the CDR's dstchannel)."""
    def found() -> list[Annotation]:
        return [a for a in pbx.bus_annotations if a.observation.channel == b_channel]
    block_until(found, timeout, what=f"an annotation of {b_channel} published")
    return found()


def seed_entries() -> list[tuple[str, Entry]]:
    """Every SIP entry of the seed catalogs a carrier can answer with: provider messages (matched by their words
    under any code) are not codes and are left out."""
    catalogs = load_catalogs()
    return [(cid, entry) for cid in SEED_CATALOGS for entry in catalogs[cid].entries
            if not entry.message and entry.code.isdigit()]
