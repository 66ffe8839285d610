"""The progress line: shown only on a terminal (or when asked), with rate and ETA from a supplied clock."""
from __future__ import annotations

import io

from pbx_codes.enrich.progress import Progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_line_shows_percent_rate_and_eta():
    clock = FakeClock()
    out = io.StringIO()
    bar = Progress(1000, stream=out, enabled=True, clock=clock)
    clock.now += 2.0
    bar.update(250, 50_000)
    text = out.getvalue()
    assert "25.0%" in text and "25,000 rows/s" in text and "ETA 0:06" in text
    bar.close()
    assert out.getvalue().endswith("\r\x1b[K")


def test_progress_stays_silent_when_stderr_is_not_a_terminal():
    out = io.StringIO()                      # isatty() is False
    bar = Progress(1000, stream=out)
    bar.update(500, 10)
    bar.close()
    assert out.getvalue() == ""
