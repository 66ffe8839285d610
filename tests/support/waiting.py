"""The one way tests wait for something that happens in the background: poll a condition, with a deadline.

The deadline is a guard against a hung test, never a measurement: a test asserts what happened, not how fast.
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

GUARD = 20.0  # seconds


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
        raise AssertionError(f"still not true after {limit:g} s: {what or predicate}") from None


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




async def eventually(check: Callable[[], "Awaitable[object]"], limit: float = GUARD, step: float = 0.02,
                     what: str = "") -> object:
    """Like `wait_until` for a check that must await (an HTTP request): its first true result."""
    async def poll() -> object:
        while not (result := await check()):
            await asyncio.sleep(step)
        return result
    try:
        async with asyncio.timeout(limit):
            return await poll()
    except TimeoutError:
        raise AssertionError(f"still not true after {limit:g} s: {what or check}") from None


__all__ = ["GUARD", "SleepRecorder", "eventually", "wait_until"]
