"""The asyncio ESL client against a test server that speaks as the recorded FreeSWITCH did."""
from __future__ import annotations

import asyncio
import json
import logging
import random
from pathlib import Path

import pytest

from pbx_codes.adapters.esl_client import EslAuthError, EslClient, EslClientConfig, read_secret
from pbx_codes.protocols.esl import Event, ProtocolError, parse_stream

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "freeswitch"
PASSWORD = "ClueCon"
GUARD = 20  # seconds: only a guard against a hung test, never asserted on


def recorded_events(name: str) -> bytes:
    """The event frames FreeSWITCH sent after the subscription reply, byte-exact, disconnect notice included."""
    data = (FIXTURES / name).read_bytes()
    marker = b"Reply-Text: +OK event listener enabled json\n\n"
    return data[data.index(marker) + len(marker):]


def reply(text: str, **headers: str) -> bytes:
    extra = "".join(f"{k}: {v}\n" for k, v in headers.items())
    return f"Content-Type: command/reply\nReply-Text: {text}\n{extra}\n".encode()


def api_response(text: str) -> bytes:
    body = text.encode()
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(body) + body


def background_job(job_uuid: str, body: str) -> bytes:
    payload = json.dumps({"Event-Name": "BACKGROUND_JOB", "Job-UUID": job_uuid, "Job-Command": "originate",
                          "_body": body}).encode()
    return b"Content-Length: %d\nContent-Type: text/event-json\n\n" % len(payload) + payload


class FakeFreeswitch:
    """mod_event_socket as recorded: auth/request, +OK accepted / -ERR invalid, event, api, bgapi, then the events."""

    def __init__(self, *, after_subscribe: str = "recording", recording: str = "409_not_enough_money.bridge.json"
                 ".esl.txt", hung_up: frozenset[str] = frozenset()) -> None:
        self.after_subscribe = after_subscribe
        self.recording = recorded_events(recording)
        self.hung_up = hung_up
        self.connections = 0
        self.auth_attempts: list[str] = []
        self.commands: list[str] = []
        self.subscribed = asyncio.Event()
        self.port = 0
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            writer.write(b"Content-Type: auth/request\n\n")
            if self.after_subscribe == "close_before_auth":
                return
            while True:
                block = (await reader.readuntil(b"\n\n")).decode()
                self.commands.append(block)
                line, *header_lines = block.strip("\n").split("\n")
                headers = dict(h.split(": ", 1) for h in header_lines)
                verb, _, rest = line.partition(" ")
                if verb == "auth":
                    self.auth_attempts.append(rest)
                    if rest != PASSWORD:
                        writer.write(reply("-ERR invalid"))
                        await writer.drain()
                        return
                    writer.write(reply("+OK accepted"))
                elif verb == "event":
                    writer.write(reply(f"+OK event listener enabled {rest.split()[0]}"))
                    await writer.drain()
                    self.subscribed.set()
                    await self._after_subscribe(writer)
                elif verb == "api":
                    cmd, *args = rest.split(" ")
                    if cmd == "uuid_setvar":
                        writer.write(api_response("-ERR No such channel!\n" if args[0] in self.hung_up else "+OK\n"))
                    else:
                        writer.write(api_response(f"-ERR {cmd} Command not found!\n"))
                elif verb == "bgapi":
                    job = headers.get("Job-UUID", "server-made")
                    writer.write(reply(f"+OK Job-UUID: {job}", **{"Job-UUID": job}))
                    writer.write(background_job("someone-else", "+OK not yours\n"))
                    writer.write(background_job(job, "-ERR NORMAL_UNSPECIFIED\n"))
                else:
                    writer.write(reply("-ERR command not found"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _after_subscribe(self, writer: asyncio.StreamWriter) -> None:
        mode = self.after_subscribe
        if mode == "recording":
            writer.write(self.recording)  # ends with FreeSWITCH's disconnect notice
        elif mode == "garbage":
            writer.write(b"this is not a header line\n\n")
        elif mode == "drop":
            writer.close()
        # "silent" and "interactive": nothing until the client sends something


class Recorder:
    """A stand-in for asyncio.sleep that records the requested delays and stops the client after ``stop_after``."""

    def __init__(self, stop_after: int) -> None:
        self.delays: list[float] = []
        self.stop_after = stop_after
        self.done = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if len(self.delays) >= self.stop_after:
            self.done.set()
            await asyncio.Future()  # park here until the test cancels the client
        await asyncio.sleep(0)


def config(port: int, **kw) -> EslClientConfig:
    base = dict(port=port, password=PASSWORD, heartbeat_timeout=GUARD, reconnect_min=0.5, reconnect_max=8,
                auth_failure_backoff=60, connect_timeout=GUARD, command_timeout=GUARD)
    base.update(kw)
    return EslClientConfig(**base)


async def run_until(client: EslClient, condition: asyncio.Event) -> None:
    task = asyncio.create_task(client.run())
    try:
        await asyncio.wait_for(condition.wait(), GUARD)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.asyncio
async def test_client_delivers_every_recorded_event_in_order():
    server = FakeFreeswitch()
    port = await server.start()
    expected = [f for f in parse_stream(server.recording) if isinstance(f, Event)]
    got: list[Event] = []
    sleep = Recorder(stop_after=1)
    client = EslClient(config(port), got.append, sleep=sleep)
    try:
        await run_until(client, sleep.done)  # the recording ends with a disconnect notice -> one reconnect wait
    finally:
        await server.close()
    assert got == expected
    assert server.commands[1] == "event json CHANNEL_CREATE CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE HEARTBEAT " \
                                 "BACKGROUND_JOB\n\n"


@pytest.mark.asyncio
async def test_wrong_password_backs_off_instead_of_looping(caplog: pytest.LogCaptureFixture):
    server = FakeFreeswitch()
    port = await server.start()
    sleep = Recorder(stop_after=2)
    client = EslClient(config(port, password="wrong"), sleep=sleep)
    try:
        with caplog.at_level(logging.ERROR, logger="pbx_codes.esl"):
            await run_until(client, sleep.done)
    finally:
        await server.close()
    assert server.auth_attempts == ["wrong", "wrong"]
    assert all(d >= 60 for d in sleep.delays)
    assert isinstance(client.last_error, EslAuthError)
    assert "refused the password" in caplog.text


@pytest.mark.asyncio
async def test_reconnect_backoff_grows_exponentially_with_jitter():
    server = FakeFreeswitch(after_subscribe="close_before_auth")
    port = await server.start()
    sleep = Recorder(stop_after=5)
    client = EslClient(config(port), sleep=sleep, rng=random.Random(7))
    try:
        await run_until(client, sleep.done)
    finally:
        await server.close()
    caps = [0.5, 1, 2, 4, 8]
    assert all(cap / 2 <= d <= cap for d, cap in zip(sleep.delays, caps))
    assert server.connections == 5


@pytest.mark.asyncio
async def test_watchdog_reconnects_a_silent_connection(caplog: pytest.LogCaptureFixture):
    server = FakeFreeswitch(after_subscribe="silent")
    port = await server.start()
    sleep = Recorder(stop_after=2)
    client = EslClient(config(port, heartbeat_timeout=0.2), sleep=sleep)
    try:
        with caplog.at_level(logging.WARNING, logger="pbx_codes.esl"):
            await run_until(client, sleep.done)
    finally:
        await server.close()
    assert server.connections == 2 and client.connections == 2
    assert "watchdog" in str(client.last_error)
    assert "not being observed" in caplog.text and "were missed" in caplog.text


@pytest.mark.asyncio
async def test_garbage_frame_drops_the_connection_and_reconnects():
    server = FakeFreeswitch(after_subscribe="garbage")
    port = await server.start()
    seen: list[Event] = []
    sleep = Recorder(stop_after=2)
    client = EslClient(config(port), seen.append, sleep=sleep)
    try:
        await run_until(client, sleep.done)
    finally:
        await server.close()
    assert isinstance(client.last_error, ProtocolError)
    assert server.connections == 2 and seen == []


@pytest.mark.asyncio
async def test_api_uuid_setvar_reports_no_such_channel_after_hangup():
    server = FakeFreeswitch(after_subscribe="interactive", hung_up=frozenset({"b-leg"}))
    port = await server.start()
    client = EslClient(config(port))
    task = asyncio.create_task(client.run())
    try:
        await asyncio.wait_for(client.connected.wait(), GUARD)
        gone = await client.api("uuid_setvar", "b-leg", "pbx_phrase", "Not enough money")
        alive = await client.api("uuid_setvar", "a-leg", "pbx_phrase", "Not enough money")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.close()
    assert (gone.body, gone.ok) == ("-ERR No such channel!\n", False)
    assert (alive.body, alive.ok) == ("+OK\n", True)
    assert "api uuid_setvar b-leg pbx_phrase Not enough money\n\n" in server.commands


@pytest.mark.asyncio
async def test_bgapi_returns_its_own_background_job():
    server = FakeFreeswitch(after_subscribe="interactive")
    port = await server.start()
    jobs: list[Event] = []
    client = EslClient(config(port), lambda e: jobs.append(e) if e.name == "BACKGROUND_JOB" else None)
    task = asyncio.create_task(client.run())
    try:
        await asyncio.wait_for(client.connected.wait(), GUARD)
        result = await client.bgapi("originate", "sofia/gateway/gw409/409", "&park")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.close()
    assert result == "-ERR NORMAL_UNSPECIFIED\n"
    assert len(jobs) == 2  # the unrelated job was still delivered as an event
    sent = next(c for c in server.commands if c.startswith("bgapi"))
    assert sent.startswith("bgapi originate sofia/gateway/gw409/409 &park\nJob-UUID: ")


@pytest.mark.asyncio
async def test_hostile_value_cannot_reach_the_wire():
    server = FakeFreeswitch(after_subscribe="interactive")
    port = await server.start()
    client = EslClient(config(port))
    task = asyncio.create_task(client.run())
    try:
        await asyncio.wait_for(client.connected.wait(), GUARD)
        with pytest.raises(ValueError):
            await client.api("uuid_setvar", "a-leg", "pbx_phrase", "x\n\napi shutdown")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.close()
    assert not [c for c in server.commands if "shutdown" in c]


def test_read_secret_prefers_env_then_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    secret = tmp_path / "esl.secret"
    secret.write_text("from-file\nignored\n")
    monkeypatch.delenv("PBX_TEST_ESL", raising=False)
    assert read_secret("PBX_TEST_ESL", str(secret)) == "from-file"
    monkeypatch.setenv("PBX_TEST_ESL", "from-env")
    assert read_secret("PBX_TEST_ESL", str(secret)) == "from-env"
