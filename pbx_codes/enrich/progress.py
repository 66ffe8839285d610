"""A one-line progress bar on stderr (only when stderr is a terminal): done/total, rate and ETA. No dependency."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """Call `update(done, rows)` often; it redraws at most a few times a second. `done`/`total` share a unit
    (bytes of a file, rows of a table) so the ETA holds even when rows differ in size."""

    def __init__(self, total: int | None, *, stream: TextIO | None = None, enabled: bool | None = None,
                 clock: Callable[[], float] = time.monotonic, unit: str = "B") -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = total or None
        self.unit = unit
        self.clock = clock
        self.start = clock()
        self._next_draw = 0.0
        self._drawn = False

    def update(self, done: int, rows: int, *, base: int = 0) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if now < self._next_draw:
            return
        self._next_draw = now + 0.25
        self.stream.write("\r" + self.line(done, rows, now - self.start, base=base) + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def line(self, done: int, rows: int, elapsed: float, *, base: int = 0) -> str:
        rate = rows / elapsed if elapsed > 0 else 0.0
        text = f"{rows:,} rows, {rate:,.0f} rows/s"
        if self.total:
            fraction = min(max(done / self.total, 0.0), 1.0)
            width = 30
            filled = int(fraction * width)
            bar = "#" * filled + "-" * (width - filled)
            part = (done - base) / elapsed if elapsed > 0 else 0.0
            eta = (self.total - done) / part if part > 0 else None
            eta_text = f"ETA {int(eta // 60)}:{int(eta % 60):02d}" if eta is not None else "ETA --:--"
            text = f"[{bar}] {fraction * 100:5.1f}% {text}, {eta_text}"
        return text

    def close(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


__all__ = ["Progress"]
