"""`serve` runs the configured parts in one process and stops cleanly when asked."""
from __future__ import annotations

import asyncio

import pytest

from pbx_codes.config import parse_config
from pbx_codes.resolve import Resolver
from pbx_codes.runtime.app import serve
from support.waiting import eventually


async def connect_when_listening(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect once the server under test has bound its port (it starts in the background)."""
    return await eventually(lambda: asyncio.open_connection("127.0.0.1", port), retry_on=(OSError,),
                            what=f"something listens on 127.0.0.1:{port}")


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


async def http_get(port: int, path: str) -> tuple[int, str]:
    """One GET to the console on 127.0.0.1; (status, body)."""
    reader, writer = await connect_when_listening(port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    raw = (await asyncio.wait_for(reader.read(), 10)).decode("utf-8", errors="replace")
    writer.close()
    head, _, body = raw.partition("\r\n\r\n")
    return int(head.split(" ")[1]), body


@pytest.mark.asyncio
async def test_a_refused_ami_login_does_not_stop_serve_and_shows_in_the_console_and_metrics(
        catalogs, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import socket

    from adapters.agi_test_client import agi_request, play_res_agi
    from adapters.ami_test_server import AmiTestServer
    from support.waiting import wait_until

    def free_port() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    monkeypatch.setenv("PBXC_TEST_APP_SECRET", "wrong-secret")
    ami = await AmiTestServer(secret="right-secret").start()
    agi_port, console_port = free_port(), free_port()
    config = parse_config({"asterisk": {"ami": {"enabled": True, "port": ami.port,
                                                "secret_env": "PBXC_TEST_APP_SECRET"},
                                        "agi": {"port": agi_port}}})
    stop = asyncio.Event()
    task = asyncio.create_task(serve(config, Resolver(catalogs), console=f"127.0.0.1:{console_port}", stop=stop))
    try:
        await wait_until(lambda: ami.refused_logins >= 1)
        reader, writer = await connect_when_listening(agi_port)
        commands = await play_res_agi(reader, writer, agi_request("lookup?code=503", channel="PJSIP/a-1",
                                                                  uniqueid="1.1"), {})
        assert any(b"pbx_category" in c for c in commands)  # FastAGI answers with the AMI login refused
        status, body = await http_get(console_port, "/api/health")
        parts = {p["part"]: p for p in json.loads(body)["parts"]}
        assert status == 200 and parts[f"AMI 127.0.0.1:{ami.port}"]["state"] == "refused"
        status, body = await http_get(console_port, "/metrics")
        assert f'pbx_codes_part_state{{part="AMI 127.0.0.1:{ami.port}",state="refused"}} 1.0' in body
        assert not task.done()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await ami.stop()


@pytest.mark.asyncio
async def test_a_missing_ami_secret_is_a_start_up_error_that_ends_serve(catalogs, monkeypatch: pytest.MonkeyPatch,
                                                                         unused_tcp_port: int) -> None:
    monkeypatch.delenv("PBXC_TEST_APP_NO_SECRET", raising=False)
    config = parse_config({"asterisk": {"ami": {"enabled": True, "secret_env": "PBXC_TEST_APP_NO_SECRET"},
                                        "agi": {"port": unused_tcp_port}}})
    with pytest.raises(ValueError, match="PBXC_TEST_APP_NO_SECRET"):
        await asyncio.wait_for(serve(config, Resolver(catalogs)), 10)


@pytest.mark.asyncio
async def test_a_part_that_crashes_after_start_up_is_logged_and_the_others_keep_running(
        catalogs, unused_tcp_port: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import pbx_codes.runtime.app as app_module

    async def crashing(app) -> None:
        raise RuntimeError("a bug in one part")

    monkeypatch.setattr(app_module, "_log_annotations", crashing)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(parse_config({}), Resolver(catalogs), console=f"127.0.0.1:{unused_tcp_port}",
                                     stop=stop))
    try:
        status, body = await http_get(unused_tcp_port, "/api/health")
        from support.waiting import wait_until
        await wait_until(lambda: "a part of serve crashed" in caplog.text)
        status, body = await http_get(unused_tcp_port, "/api/health")
        assert status == 200 and "a bug in one part" in body
        assert not task.done()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.mark.asyncio
async def test_a_database_down_at_start_is_shown_down_until_it_answers_even_with_no_rows_to_write(
        catalogs, postgres_server, postgres_url: str, tmp_path, unused_tcp_port: int) -> None:
    import json

    from support.waiting import eventually

    async def store_state() -> str:
        _status, body = await http_get(unused_tcp_port, "/api/health")
        return next(p["state"] for p in json.loads(body)["parts"] if p["part"].startswith("store"))

    await asyncio.to_thread(postgres_server.stop)
    config = parse_config({"store": {"url": postgres_url, "journal": str(tmp_path / "journal.jsonl")}})
    stop = asyncio.Event()
    task = asyncio.create_task(serve(config, Resolver(catalogs), console=f"127.0.0.1:{unused_tcp_port}", stop=stop))
    try:
        assert await store_state() == "down"
        await asyncio.to_thread(postgres_server.start)

        async def up() -> bool:
            return await store_state() == "up"
        await eventually(up, what="the store is reached")
        assert not task.done()
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
