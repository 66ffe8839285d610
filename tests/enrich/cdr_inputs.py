"""Inputs for the enrich tests, built from the recorded Asterisk and FreeSWITCH CDR rows where possible."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pbx_codes.catalog import load_catalogs
from pbx_codes.enrich import RowAnnotator
from pbx_codes.resolve import Resolver
from support.paths import FIXTURES, captures

ASTERISK = FIXTURES / "asterisk"
FREESWITCH = FIXTURES / "freeswitch"

#: Column names of the recorded Asterisk files (the recording's own cdr_custom mappings, see its README).
LEGACY_COLUMNS = ("uniqueid", "linkedid", "channel", "dstchannel", "dst", "lastapp", "lastdata", "start", "end",
                  "disposition", "userfield", "sip_code", "sip_reason", "q850", "agi_note", "ami_note", "ami_late",
                  "h_note", "b_hdr", "b_note", "sequence")
#: The columns the recording's mod_cdr_csv template wrote, in order (the keys of summary.json's cdr_csv rows).
FS_RECORDED_COLUMNS = ("uuid", "call_uuid", "bridge_uuid", "last_bridge_to", "direction", "channel_name",
                       "destination_number", "start_stamp", "end_stamp", "hangup_cause", "hangup_cause_q850",
                       "sip_term_status", "sip_term_cause", "sip_invite_failure_status", "sip_invite_failure_phrase",
                       "sip_hangup_phrase", "sip_reason", "proto_specific_hangup_cause",
                       "last_bridge_proto_specific_hangup_cause", "last_bridge_hangup_cause",
                       "originate_disposition", "DIALSTATUS", "sip_hangup_disposition", "sip_reason_text",
                       "sip_reason_text_hc", "aleg_note", "hook_note", "pre_hangup_note")


def asterisk_sections(scenario: str) -> dict[str, str]:
    """A recorded ``<scenario>.cdr.txt`` split into its files: {"Legacy.csv": text, "bench.json": ..., ...}."""
    text = (ASTERISK / f"{scenario}.cdr.txt").read_text(encoding="utf-8")
    parts = re.split(r"^== (.*)$", text, flags=re.M)
    out = {}
    for title, body in zip(parts[1::2], parts[2::2]):
        out[Path(title.split(" ")[0]).name] = body.strip("\n") + "\n"
    return out


def asterisk_scenarios() -> list[str]:
    return [p.name[: -len(".cdr.txt")] for p in captures(ASTERISK, "*.cdr.txt")]


def fs_summaries() -> list[Path]:
    return captures(FREESWITCH, "*.summary.json")


def fs_rows(summary: Path) -> list[dict[str, str]]:
    """The recorded mod_cdr_csv rows of a call, with each value as FreeSWITCH had it (the summary's parsed CSV
    garbles a sip_reason with quotes; mod_json_cdr's copy of that variable is the true value)."""
    data = json.loads(summary.read_text(encoding="utf-8"))
    rows = []
    for uuid, row in data["cdr_csv"].items():
        row = dict(row)
        truth = (data.get("cdr_json") or {}).get(uuid) or {}
        if truth.get("sip_reason"):
            row["sip_reason"] = truth["sip_reason"]
        rows.append(row)
    return rows


def mod_cdr_csv_line(values: list[str]) -> str:
    """A line as mod_cdr_csv writes it: every field in quotes, nothing escaped."""
    return '"' + '","'.join(values) + '"\n'


@pytest.fixture(scope="session")
def enrich_catalogs():
    return load_catalogs()


@pytest.fixture()
def make_annotator(enrich_catalogs):
    def make(pbx: str = "asterisk", *, bindings=None, lang: str = "en", quote_free: bool = False) -> RowAnnotator:
        resolver = Resolver(enrich_catalogs, bindings=bindings or {})
        return RowAnnotator(resolver.resolve, lang=lang, pbx=pbx, use_trunk=bool(bindings), quote_free=quote_free)
    return make
