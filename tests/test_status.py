"""Each part's state: logged once per change, never an empty reason, read by /metrics and the console."""
from __future__ import annotations

import logging

import pytest

from pbx_codes.status import Health, PartStatus, describe_error


def test_a_state_is_logged_once_per_change_not_once_per_attempt(caplog: pytest.LogCaptureFixture) -> None:
    status = PartStatus("AMI 127.0.0.1:5038", logger=logging.getLogger("pbx_codes.test_status"))
    with caplog.at_level(logging.INFO, logger="pbx_codes.test_status"):
        for attempt in range(10):
            status.set("unreachable", f"connect refused, attempt {attempt}")
        status.set("up", "logged in")
        status.set("up", "logged in")
        status.set("refused", "Authentication failed")
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO", "ERROR"]
    assert status.reason == "Authentication failed" and status.changes == 3


def test_an_unknown_state_is_refused() -> None:
    with pytest.raises(ValueError):
        PartStatus("x").set("sleepy")


def test_health_reads_callable_parts_at_each_snapshot() -> None:
    health = Health()
    state = {"now": "up"}
    health.add(PartStatus("AMI"))
    health.add(lambda: PartStatus("store", state=state["now"]))
    assert [p["state"] for p in health.snapshot()] == ["starting", "up"]
    state["now"] = "down"
    assert [p["up"] for p in health.snapshot()] == [False, False]


def test_a_bare_timeout_gets_a_reason() -> None:
    assert describe_error(TimeoutError()) == "timed out"
    assert describe_error(TimeoutError(), "login") == "login: timed out"
    assert describe_error(ConnectionRefusedError(111, "Connection refused")).startswith("ConnectionRefusedError")
    assert describe_error(ValueError()) == "ValueError"
