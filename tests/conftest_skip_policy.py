"""pytest plugin: under CI=true nothing may skip; every skip becomes a failure that names what was missing.

The README promises the real Asterisk bench, PostgreSQL, Chromium, Lua, promtool and the Docker bench. On a
developer's machine a test that cannot have its piece skips and says why; in CI that would let a missing install
step pass green, so there the same reason fails the test in one line. Expected failures (xfail) are not skips.
Registered from tests/conftest.py.
"""
from __future__ import annotations

import os
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import pytest

CI_VALUES = ("true", "1", "yes")


def skips_are_failures() -> bool:
    return os.environ.get("CI", "").strip().lower() in CI_VALUES


@dataclass(frozen=True)
class MissingPiece:
    """A report's longrepr: one line, shown both in the failure section and in the short summary."""

    message: str

    @property
    def reprcrash(self) -> MissingPiece:  # pytest's short summary reads ``longrepr.reprcrash.message``
        return self

    def toterminal(self, tw: Any) -> None:
        tw.line(self.message, red=True, bold=True)

    def __str__(self) -> str:
        return self.message


def skip_reason(longrepr: Any) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
    else:
        reason = str(longrepr)
    return reason.removeprefix("Skipped: ").strip() or "no reason given"


def as_failure(report: pytest.TestReport | pytest.CollectReport) -> None:
    report.outcome = "failed"
    report.longrepr = MissingPiece(f"CI=true: nothing may skip, and this did: {skip_reason(report.longrepr)}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and skips_are_failures():
        as_failure(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()
    if report.skipped and skips_are_failures():
        as_failure(report)


def pytest_report_header(config: pytest.Config) -> str | None:
    return "CI=true: every skip fails" if skips_are_failures() else None
