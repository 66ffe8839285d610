"""Running the console for `serve`: it binds, answers, ends open streams on shutdown and refuses a bad setup."""
from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from pbx_codes.config import ConfigError
from pbx_codes.console import ConsoleSettings, run_console, start_console
from pbx_codes.console.app import HUB
from pbx_codes.sinks.bus import AnnotationBus
from support.waiting import eventually, wait_until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.asyncio
async def test_run_console_serves_until_cancelled() -> None:
    port, bus = _free_port(), AnnotationBus()
    task = asyncio.ensure_future(run_console({"listen": f"127.0.0.1:{port}"}, bus, language="uk"))
    async with aiohttp.ClientSession() as session:
        async def get() -> tuple[int, str]:
            async with session.get(f"http://127.0.0.1:{port}/") as response:
                return response.status, await response.text()
        status, page = await eventually(get, retry_on=(aiohttp.ClientConnectorError,), what="the console listens")
    assert status == 200 and 'data-lang="uk"' in page
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert bus.subscriptions == []  # the console's bus subscription went with it


@pytest.mark.asyncio
async def test_run_console_refuses_a_public_address_without_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PBX_CODES_CONSOLE_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="needs an access token"):
        await run_console({"listen": "0.0.0.0:0"}, AnnotationBus())


@pytest.mark.asyncio
async def test_listen_override_wins_over_the_section() -> None:
    port = _free_port()
    task = asyncio.ensure_future(run_console({"listen": "127.0.0.1:1"}, AnnotationBus(), listen=f"127.0.0.1:{port}"))
    async with aiohttp.ClientSession() as session:
        async def get() -> int:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                return response.status
        status = await eventually(get, retry_on=(aiohttp.ClientConnectorError,), what="the console listens")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert status == 200


@pytest.mark.asyncio
async def test_shutdown_ends_open_event_streams() -> None:
    runner, port = await start_console(ConsoleSettings(port=0), AnnotationBus())
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/events") as response:
        assert await response.content.readline() == b": connected\n"
        await wait_until(lambda: runner.app[HUB].clients, what="the event stream is registered")
        await runner.cleanup()
        rest = await response.content.read()
    assert rest == b"\n"  # the blank line after the comment, then the end of the stream
