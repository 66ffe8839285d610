"""`within`: a time limit on an await that never swallows a cancellation.

Python 3.11's `asyncio.wait_for` can lose a `cancel()` that arrives while the awaited thing completes (the race
fixed in 3.12); a task stopped that way keeps running, so a listener ignores shutdown and `gather` waits for ever.
`asyncio.timeout` counts cancellations and has no such race, so every time limit in the package goes through here.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
    """Await `awaitable`, raising TimeoutError after `seconds` (None: no limit)."""
    async with asyncio.timeout(seconds):
        return await awaitable
