"""What one enrich run did: counted while it runs, printed on stderr and optionally saved as JSON at the end."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

#: How many malformed rows a summary lists by line (all are counted).
MAX_LISTED = 100


@dataclass(slots=True)
class Summary:
    """Counters of one run (mutable on purpose: the row loop bumps them; nothing else shares the object)."""

    source: str = ""
    output: str = ""
    rows_read: int = 0
    annotated: int = 0
    skipped_annotated: int = 0      # had pbx_category already: left exactly as it was
    skipped_no_cause: int = 0       # no code, no cause, no usable disposition: nothing to say
    skipped_malformed: int = 0      # not a row of this layout (copied through unchanged, never annotated)
    malformed_lines: list[int] = field(default_factory=list)   # where they start (the first MAX_LISTED of them)
    resumed_from_row: int = 0
    by_category: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    note: str = ""

    @property
    def skipped(self) -> int:
        return self.skipped_annotated + self.skipped_no_cause + self.skipped_malformed

    def malformed_at(self, line: int) -> None:
        """One malformed row, starting at input line `line` (1-based, the header included)."""
        self.skipped_malformed += 1
        if len(self.malformed_lines) < MAX_LISTED:
            self.malformed_lines.append(line)

    def count(self, category: str, kind: str, n: int = 1) -> None:
        self.annotated += n
        self.by_category[category] = self.by_category.get(category, 0) + n
        self.by_kind[kind] = self.by_kind.get(kind, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "output": self.output, "rows_read": self.rows_read, "annotated": self.annotated,
            "skipped": self.skipped,
            "skipped_detail": {"already_annotated": self.skipped_annotated, "no_cause": self.skipped_no_cause,
                               "malformed": self.skipped_malformed},
            "malformed_lines": list(self.malformed_lines),
            "resumed_from_row": self.resumed_from_row,
            "by_category": dict(sorted(self.by_category.items(), key=lambda kv: (-kv[1], kv[0]))),
            "by_kind": dict(sorted(self.by_kind.items())),
            "elapsed_s": round(self.elapsed, 3),
            "rows_per_s": round(self.rows_read / self.elapsed) if self.elapsed > 0 else None,
            "note": self.note or None,
        }

    def write_text(self, out: TextIO) -> None:
        d = self.to_dict()
        rate = f", {d['rows_per_s']:,} rows/s" if d["rows_per_s"] else ""
        out.write(f"enrich: {self.source} -> {self.output}\n")
        if self.note:
            out.write(f"  {self.note}\n")
        out.write(f"  rows read {self.rows_read:,}, annotated {self.annotated:,}, skipped {self.skipped:,} "
                  f"(already annotated {self.skipped_annotated:,}, no cause {self.skipped_no_cause:,}, "
                  f"malformed {self.skipped_malformed:,}) in {self.elapsed:.2f}s{rate}\n")
        if self.skipped_malformed:
            shown = ", ".join(str(n) for n in self.malformed_lines)
            more = f" and {self.skipped_malformed - len(self.malformed_lines):,} more" \
                if self.skipped_malformed > len(self.malformed_lines) else ""
            where = f" at line{'s' if len(self.malformed_lines) > 1 else ''} {shown}{more}" if shown else ""
            out.write(f"  malformed rows (wrong number of fields or an unterminated quote){where}: copied "
                      "unchanged, not annotated\n")
        if self.resumed_from_row:
            out.write(f"  resumed after row {self.resumed_from_row:,}\n")
        if self.by_category:
            out.write("  by category: " + ", ".join(f"{k} {v:,}" for k, v in d["by_category"].items()) + "\n")
        if self.by_kind:
            out.write("  by source: " + ", ".join(f"{k} {v:,}" for k, v in d["by_kind"].items()) + "\n")

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


__all__ = ["Summary"]
