"""`serve` runs the configured parts in one process and stops cleanly when asked."""
from __future__ import annotations

import asyncio
import pytest

from pbx_codes.app import serve
from pbx_codes.config import parse_config
from pbx_codes.resolve import Resolver


async def connect_when_listening(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect once the server under test has bound its port (it starts in the background)."""
    for _ in range(100):
        try:
            return await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


@pytest.mark.asyncio
async def test_serve_with_nothing_configured_runs_until_stopped(catalogs) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(serve(parse_config({}), Resolver(catalogs), stop=stop))
    await asyncio.sleep(0.05)
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 5)


@pytest.mark.asyncio
async def test_serve_answers_the_freeswitch_hook_when_configured(catalogs, unused_tcp_port: int) -> None:
    config = parse_config({"freeswitch": {"esl": False, "hook_port": unused_tcp_port}, "bindings": {"gw": "lifecell"}})
    stop = asyncio.Event()
    task = asyncio.create_task(serve(config, Resolver(catalogs, bindings=dict(config.bindings)), stop=stop))
    try:
        reader, writer = await connect_when_listening(unused_tcp_port)
        body = b"sip_invite_failure_status=409&sip_invite_failure_phrase=Not%20enough%20money&sip_gateway_name=gw"
        writer.write(b"POST /annotate HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        await writer.drain()
        answer = (await asyncio.wait_for(reader.read(), 5)).decode()
        writer.close()
        assert "pbx_category=billing" in answer and "pbx_catalog=lifecell" in answer
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


@pytest.mark.asyncio
async def test_a_part_that_dies_stops_serve_with_its_error(catalogs, unused_tcp_port: int) -> None:
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", unused_tcp_port)
    try:
        config = parse_config({"freeswitch": {"esl": False, "hook_port": unused_tcp_port}})
        with pytest.raises(OSError):
            await asyncio.wait_for(serve(config, Resolver(catalogs)), 5)
    finally:
        blocker.close()


@pytest.mark.asyncio
async def test_serve_runs_the_console_when_asked(catalogs, unused_tcp_port: int) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(serve(parse_config({}), Resolver(catalogs), console=f"127.0.0.1:{unused_tcp_port}",
                                     stop=stop))
    try:
        reader, writer = await connect_when_listening(unused_tcp_port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        await writer.drain()
        answer = (await asyncio.wait_for(reader.read(), 5)).decode()
        writer.close()
        assert answer.startswith("HTTP/1.1 200")
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


@pytest.mark.asyncio
async def test_a_part_that_fails_to_start_closes_the_parts_started_before_it(
        catalogs, tmp_path, unused_tcp_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import pbx_codes.store as store_package

    closed: list[bool] = []
    real_run_store = store_package.run_store

    async def recording_run_store(*args, **kwargs):
        store = await real_run_store(*args, **kwargs)
        real_close = store.close

        async def close(*a, **k):
            closed.append(True)
            return await real_close(*a, **k)

        monkeypatch.setattr(store, "close", close)
        return store

    monkeypatch.setattr(store_package, "run_store", recording_run_store)
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", unused_tcp_port)
    try:
        with pytest.raises(OSError):  # the console cannot bind; the store, started before it, must be closed
            await asyncio.wait_for(serve(parse_config({}), Resolver(catalogs), store_url=f"sqlite:///{tmp_path}/a.db",
                                         console=f"127.0.0.1:{unused_tcp_port}"), 10)
        assert closed == [True]
    finally:
        blocker.close()
