"""Reading the records the bench's Asterisk wrote: cdr_custom's JSON and CSV files, and cdr_sqlite3_custom."""
from __future__ import annotations

import csv
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from pbx_codes.testbed.config import SHIPPED_CONFIG_DIR
from pbx_codes.testbed.rootfs import BenchError

CDR_JSON = "var/log/asterisk/cdr-custom/pbx_codes.json"
CDR_CSV = "var/log/asterisk/cdr-custom/pbx_codes.csv"
CDR_SQLITE = "var/log/asterisk/pbx_codes.db"


class CdrFiles:
    """The CDR files inside one root filesystem."""

    def __init__(self, rootfs: Path) -> None:
        self.rootfs = rootfs

    def clear(self) -> None:
        """Each start begins with empty CDR files and log, so rows and log lines belong to this run."""
        for rel in (CDR_JSON, CDR_CSV, CDR_SQLITE, "var/log/asterisk/full", "var/log/asterisk/bench-console.log"):
            (self.rootfs / rel).unlink(missing_ok=True)

    def json_rows(self) -> list[dict[str, Any]]:
        """Every record cdr_custom wrote as JSON, oldest first (one dict per line of pbx_codes.json)."""
        path = self.rootfs / CDR_JSON
        if not path.exists():
            return []
        rows = []
        for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
            if line.strip():
                rows.append(loads_cdr_json(line))
        return rows

    def csv_rows(self) -> list[dict[str, str]]:
        """The same records from the CSV file, keyed by the field names of cdr_custom.conf."""
        path = self.rootfs / CDR_CSV
        if not path.exists():
            return []
        names = csv_field_names()
        with path.open(encoding="utf-8", errors="replace", newline="") as fh:
            return [dict(zip(names, row, strict=True)) for row in csv.reader(fh) if row]

    def sqlite_rows(self) -> list[dict[str, Any]]:
        """The same records from cdr_sqlite3_custom's database."""
        path = self.rootfs / CDR_SQLITE
        if not path.exists():
            return []
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            con.row_factory = sqlite3.Row
            # A carrier can send bytes that are not UTF-8; Asterisk stores them as they came.
            con.text_factory = lambda raw: raw.decode("utf-8", "replace")
            return [dict(row) for row in con.execute("SELECT * FROM cdr ORDER BY rowid")]
        finally:
            con.close()

    def wait_rows(self, src: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The JSON records of the call whose caller id number is ``src``, once Asterisk has written them.

        Asterisk posts a call's records together, a few ms after the A-leg's Hangup; wait until some exist and the
        file has stopped growing for two polls.
        """
        deadline = time.monotonic() + timeout
        path = self.rootfs / CDR_JSON
        last_size = -1
        while time.monotonic() < deadline:
            size = path.stat().st_size if path.exists() else 0
            rows = [row for row in self.json_rows() if row.get("src") == src]
            if rows and size == last_size:
                return rows
            last_size = size
            time.sleep(0.1)
        return [row for row in self.json_rows() if row.get("src") == src]


def loads_cdr_json(line: str) -> dict[str, Any]:
    """One line of cdr_custom's JSON mapping.

    Asterisk 22 escapes ``"`` in a value as ``\\"`` but leaves ``\\`` alone, so a carrier phrase with a backslash
    makes the line invalid JSON (and a phrase ending in one makes it ambiguous to any JSON parser). Such a line is
    read by its known field names instead: each value runs to the next ``,"<field>":``, and only ``\\"`` is undone.
    """
    try:
        return dict(json.loads(line))
    except json.JSONDecodeError:
        pass
    names = _field_names("pbx_codes.json")
    row: dict[str, Any] = {}
    body = line.rstrip("\r\n")
    if not body.startswith("{"):
        raise BenchError(f"not a cdr_custom JSON record: {line[:120]!r}")
    # A record over Asterisk's 1 KB is cut, closing brace and all: keep the fields that made it.
    complete = body.endswith("}")
    body = body[1:-1] if complete else body[1:]
    pos = 0
    for index, name in enumerate(names):
        key = f'"{name}":'
        if not body.startswith(key, pos):
            break
        pos += len(key)
        nxt = body.find(f',"{names[index + 1]}":', pos) if index + 1 < len(names) else len(body)
        raw = body[pos:nxt if nxt >= 0 else len(body)]
        if len(raw) >= 2 and raw[0] == raw[-1] == '"' and nxt >= 0 and (complete or index + 1 < len(names)):
            row[name] = raw[1:-1].replace('\\"', '"')
        elif raw.startswith('"'):
            row[name] = raw[1:].replace('\\"', '"')  # the value the record was cut in
        else:
            try:
                row[name] = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                row[name] = raw
        if nxt < 0:
            break
        pos = nxt + 1
    return row


def _field_names(section_name: str) -> list[str]:
    """The field names of a cdr_custom.conf mapping, in order."""
    text = (SHIPPED_CONFIG_DIR / "cdr_custom.conf").read_text(encoding="utf-8")
    section = text.split(f"[{section_name}]", 1)[1]
    for line in section.splitlines():
        if line.startswith("fields"):
            return [part.strip().split("(")[0] for part in line.split("=", 1)[1].split(",")]
    raise BenchError(f"cdr_custom.conf has no fields line for {section_name}")


def csv_field_names() -> list[str]:
    """The field names of the [pbx_codes.csv] mapping, in order (the CSV file has no header row)."""
    return _field_names("pbx_codes.csv")


__all__ = ["CDR_CSV", "CDR_JSON", "CDR_SQLITE", "CdrFiles", "csv_field_names", "loads_cdr_json"]
