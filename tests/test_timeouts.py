"""`within` keeps a cancel that races the awaited thing's completion (Python 3.11's wait_for loses it)."""
from __future__ import annotations

import asyncio

import pytest

from pbx_codes.timeouts import within


async def _cancel_while_completing(limit) -> asyncio.Task[None]:
    done = asyncio.get_running_loop().create_future()

    async def worker() -> None:
        await limit(done, 10)
        await asyncio.sleep(3600)  # reached only if the cancel below was swallowed

    task = asyncio.create_task(worker())
    await asyncio.sleep(0)  # the worker now waits on `done`
    done.set_result(None)
    task.cancel()  # in the same loop step as the completion: the race
    await asyncio.wait({task}, timeout=2)
    return task


@pytest.mark.asyncio
async def test_a_cancel_racing_completion_stops_the_task() -> None:
    task = await _cancel_while_completing(within)
    assert task.cancelled()


@pytest.mark.asyncio
async def test_the_limit_still_applies() -> None:
    with pytest.raises(TimeoutError):
        await within(asyncio.sleep(5), 0.01)
    assert await within(asyncio.sleep(0, "x"), None) == "x"
