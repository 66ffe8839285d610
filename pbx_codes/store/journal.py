"""The local append-only journal: where rows go when the database is away longer than memory can hold them.

One JSON object per line, appended and fsynced, so a crash loses at most the line being written (a torn last line
is skipped on replay, and counted). Replay first renames the file aside, so rows spilled while a replay runs land
in a fresh file and nothing is read twice; a crash during replay leaves the renamed file to be replayed again,
which is harmless because every row carries its `rid` and the database skips rows it already has.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPLAY_SUFFIX = ".replaying"


@dataclass(slots=True)
class Journal:
    """A JSON-lines file of unwritten rows at `path`."""

    path: Path
    spilled: int = 0
    corrupt_lines: int = 0

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    @property
    def rejected_path(self) -> Path:
        """Rows the database refused as data (not as an outage): kept for a person, never replayed."""
        return self.path.with_name(self.path.name + ".rejected")

    def reject(self, row: dict[str, Any]) -> None:
        self.rejected_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.rejected_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, ensure_ascii=False, separators=(",", ":"), default=str) + "\n")

    @property
    def replay_path(self) -> Path:
        return self.path.with_name(self.path.name + REPLAY_SUFFIX)

    def append(self, rows: Sequence[dict[str, Any]]) -> None:
        """Add rows at the end and make them durable before returning."""
        if not rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n" for row in rows)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        self.spilled += len(rows)

    def has_rows(self) -> bool:
        return any(p.exists() and p.stat().st_size > 0 for p in (self.replay_path, self.path))

    def begin_replay(self) -> Path | None:
        """The file to replay now: an interrupted replay first, else the journal renamed aside."""
        if self.replay_path.exists():
            return self.replay_path
        if self.path.exists() and self.path.stat().st_size > 0:
            os.replace(self.path, self.replay_path)
            return self.replay_path
        return None

    def read_chunks(self, path: Path, size: int) -> Iterator[list[dict[str, Any]]]:
        """Rows of a journal file, `size` at a time; lines that do not parse (a torn write) are skipped."""
        chunk: list[dict[str, Any]] = []
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    self.corrupt_lines += 1
                    continue
                if not isinstance(row, dict):
                    self.corrupt_lines += 1
                    continue
                chunk.append(row)
                if len(chunk) >= size:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk

    @staticmethod
    def finish_replay(path: Path) -> None:
        path.unlink(missing_ok=True)


__all__ = ["Journal"]
