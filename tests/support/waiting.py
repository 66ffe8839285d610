"""The one way tests wait for something that happens in the background: poll a condition, with a deadline.

The deadline is a guard against a hung test, never a measurement: a test asserts what happened, not how fast.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

GUARD = 20.0  # seconds

T = TypeVar("T")


def _expired(limit: float, what: object) -> AssertionError:
    return AssertionError(f"still not true after {limit:g} s: {what}")


async def wait_until(predicate: Callable[[], object], limit: float = GUARD, step: float = 0.005,
                     what: str = "") -> None:
    """Return once `predicate()` is true; AssertionError (naming `what`) if it is still false after `limit` s."""
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(step)
    try:
        async with asyncio.timeout(limit):
            await poll()
    except TimeoutError:
        raise _expired(limit, what or predicate) from None


def block_until(predicate: Callable[[], T], limit: float = GUARD, step: float = 0.05, what: str = "") -> T:
    """`wait_until` for synchronous tests (a real Asterisk, a browser, subprocesses): blocks this thread between
    polls and returns the predicate's first true value."""
    deadline = time.monotonic() + limit
    while not (value := predicate()):
        if time.monotonic() >= deadline:
            raise _expired(limit, what or predicate)
        time.sleep(step)
    return value


class SleepRecorder:
    """A stand-in for asyncio.sleep handed to a reconnecting client: records the waits it asks for, and parks the
    client for good after `stop_after` of them, so a test can read the backoff without waiting it out."""

    def __init__(self, stop_after: int) -> None:
        self.delays: list[float] = []
        self.stop_after = stop_after
        self.done = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if len(self.delays) >= self.stop_after:
            self.done.set()
            await asyncio.Future()  # until the test cancels the client
        await asyncio.sleep(0)


async def eventually(check: Callable[[], Awaitable[T]], limit: float = GUARD, step: float = 0.02, what: str = "",
                     retry_on: tuple[type[BaseException], ...] = ()) -> T:
    """Like `wait_until` for a check that must await (an HTTP request, a connection): its first true result.

    `retry_on` names exceptions that mean "not yet" (a server still binding its port refuses the connection)."""
    async def attempt() -> T | None:
        try:
            return await check()
        except retry_on:
            return None

    async def poll() -> T:
        while not (result := await attempt()):
            await asyncio.sleep(step)
        return result
    try:
        async with asyncio.timeout(limit):
            return await poll()
    except TimeoutError:
        raise _expired(limit, what or check) from None


__all__ = ["GUARD", "SleepRecorder", "block_until", "eventually", "wait_until"]
