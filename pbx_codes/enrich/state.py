"""The resume state of a file run: a small JSON file beside the output.

It records which input it belongs to (size, mtime and a hash of the first 64 KiB: a rotated or rewritten file has
another head) and how far the run got: input byte offset, output byte offset and rows done, all taken together at
a checkpoint after the output was flushed. A run stopped between checkpoints (kill, power loss, Ctrl-C) resumes
from the last checkpoint: the output is cut back to the recorded offset and the rows after it are done again, so
no row is ever written twice. An input that only grew (a live CDR file) resumes too; `complete` with an unchanged
input means there is nothing left to do.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

HEAD_BYTES = 64 * 1024
VERSION = 1


@dataclass(frozen=True, slots=True)
class Fingerprint:
    size: int
    mtime_ns: int
    head_sha256: str
    head_len: int = 0

    @classmethod
    def of(cls, path: Path, head_len: int | None = None) -> Fingerprint:
        """`head_len`: hash that many bytes (to compare with an earlier fingerprint of a file that grew)."""
        st = path.stat()
        with path.open("rb") as f:
            head = f.read(HEAD_BYTES if head_len is None else head_len)
        return cls(st.st_size, st.st_mtime_ns, hashlib.sha256(head).hexdigest(), len(head))


@dataclass(frozen=True, slots=True)
class RunState:
    input: str
    preset: str
    fingerprint: Fingerprint
    input_offset: int = 0
    output_offset: int = 0
    rows: int = 0
    complete: bool = False
    version: int = VERSION
    extra_lines: int = 0          # lines before input_offset that continued a quoted field (for line numbers)

    def advanced(self, *, input_offset: int, output_offset: int, rows: int, complete: bool = False,
                 fingerprint: Fingerprint | None = None, extra_lines: int | None = None) -> RunState:
        return replace(self, input_offset=input_offset, output_offset=output_offset, rows=rows, complete=complete,
                       fingerprint=fingerprint or self.fingerprint,
                       extra_lines=self.extra_lines if extra_lines is None else extra_lines)

    def resumable_for(self, path: Path, preset: str) -> bool:
        """Same input (the same first bytes), not shorter than what was read, same layout."""
        if self.version != VERSION or preset != self.preset:
            return False
        current = Fingerprint.of(path, self.fingerprint.head_len)
        return (current.head_len == self.fingerprint.head_len
                and current.head_sha256 == self.fingerprint.head_sha256 and current.size >= self.input_offset)

    def unchanged_and_complete(self, current: Fingerprint) -> bool:
        return self.complete and current == self.fingerprint


def state_path(output: Path) -> Path:
    return output.with_name(output.name + ".state.json")


def load_state(path: Path) -> RunState | None:
    """The saved state, or None when there is none or it is unreadable (then the run starts over)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        fp = Fingerprint(**raw.pop("fingerprint"))
        return RunState(fingerprint=fp, **raw)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def save_state(path: Path, state: RunState) -> None:
    """Atomically: a crash while saving leaves the previous state, never half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(state), sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


__all__ = ["Fingerprint", "RunState", "load_state", "save_state", "state_path"]
