"""Each part's state (connected, unreachable, refused, down ...), logged once per change and read by /metrics and
the console.

A part that loses its dependency (a PBX that refuses the login, a database that went away, a webhook that errors)
keeps running and retrying; what an operator needs is to see that, once, not a line per retry. `PartStatus` is the
one record every part keeps for this; `Health` is the program's list of them. Both are plain objects handed to
whoever needs them: no global registry.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

#: States a part can be in. Only `UP` counts as working; the others say what the part is waiting for.
STARTING = "starting"
UP = "up"
UNREACHABLE = "unreachable"  # the peer does not accept connections (refused, timed out, no route)
REFUSED = "refused"  # the peer refused our login or password: a configuration fault, retried patiently
FAILING = "failing"  # the peer accepted us, then broke the session (garbage, closed at once)
DOWN = "down"  # a dependency that is not a connection (database, webhook) does not answer
STATES = (STARTING, UP, UNREACHABLE, REFUSED, FAILING, DOWN)


@dataclass(slots=True)
class PartStatus:
    """One part's current state, why, and since when; `set` logs only when the state changes."""

    part: str
    state: str = STARTING
    reason: str = ""
    since: float = field(default_factory=time.time)
    changes: int = 0
    failures: int = 0  # attempts that failed (connects, logins, writes, posts)
    refusals: int = 0  # logins or passwords the peer refused
    logger: logging.Logger = field(default=logging.getLogger("pbx_codes.status"), repr=False, compare=False)

    @property
    def up(self) -> bool:
        return self.state == UP

    def set(self, state: str, reason: str = "", *, now: float | None = None) -> bool:
        """Record the state; True (and one log line) when it changed. A new reason alone is kept, not logged."""
        if state not in STATES:
            raise ValueError(f"unknown part state {state!r}")
        changed = state != self.state
        self.reason = reason
        if not changed:
            return False
        before, self.state = self.state, state
        self.since = time.time() if now is None else now
        self.changes += 1
        if state == UP:
            again = "" if before == STARTING else f" again (was {before})"
            self.logger.info("%s: up%s%s", self.part, f" ({reason})" if reason else "", again)
        else:
            level = logging.ERROR if state == REFUSED else logging.WARNING
            self.logger.log(level, "%s: %s: %s", self.part, state, reason or "no reason given")
        return True

    def snapshot(self) -> dict[str, Any]:
        return {"part": self.part, "state": self.state, "up": self.up, "reason": self.reason, "since": self.since,
                "failures": self.failures, "refusals": self.refusals}


class Health:
    """The program's parts, in the order they were added. A part is a `PartStatus`, or a function returning one
    (for parts that keep their own counters, such as the store's writer)."""

    def __init__(self) -> None:
        self._parts: list[PartStatus | Callable[[], PartStatus]] = []

    def add(self, part: PartStatus | Callable[[], PartStatus]) -> None:
        self._parts.append(part)

    def parts(self) -> list[PartStatus]:
        return [p if isinstance(p, PartStatus) else p() for p in self._parts]

    def snapshot(self) -> list[dict[str, Any]]:
        return [p.snapshot() for p in self.parts()]

    def __iter__(self) -> Iterator[PartStatus]:
        return iter(self.parts())


def describe_error(exc: BaseException, doing: str = "") -> str:
    """A log-ready reason for an exception: never an empty string (a bare TimeoutError has no text)."""
    text = str(exc).strip()
    if isinstance(exc, TimeoutError) and not text:
        text = "timed out"
    if not text:
        text = type(exc).__name__
    elif type(exc).__module__ == "builtins" and isinstance(exc, OSError) and not isinstance(exc, TimeoutError):
        text = f"{type(exc).__name__}: {text}"  # "ConnectionRefusedError: [Errno 111] ..." says more than the errno
    return f"{doing}: {text}" if doing else text


__all__ = ["DOWN", "FAILING", "Health", "PartStatus", "REFUSED", "STARTING", "STATES", "UNREACHABLE", "UP",
           "describe_error"]
