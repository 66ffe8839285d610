"""The asyncio ESL client against a test server that speaks as the recorded FreeSWITCH did."""
from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path

import pytest

from adapters.esl_test_server import PASSWORD, FakeFreeswitch
from pbx_codes.adapters.esl_client import EslAuthError, EslClient, EslClientConfig, read_secret
from pbx_codes.protocols.esl import Event, ProtocolError, parse_stream
from support.waiting import GUARD, SleepRecorder


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
    sleep = SleepRecorder(stop_after=1)
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
    sleep = SleepRecorder(stop_after=2)
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
    sleep = SleepRecorder(stop_after=5)
    client = EslClient(config(port), sleep=sleep, rng=random.Random(7))
    try:
        await run_until(client, sleep.done)
    finally:
        await server.close()
    caps = [0.5, 1, 2, 4, 8]
    assert all(cap * 0.8 <= d <= cap * 1.2 for d, cap in zip(sleep.delays, caps))
    assert server.connections == 5


@pytest.mark.asyncio
async def test_watchdog_reconnects_a_silent_connection(caplog: pytest.LogCaptureFixture):
    server = FakeFreeswitch(after_subscribe="silent")
    port = await server.start()
    sleep = SleepRecorder(stop_after=2)
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
    sleep = SleepRecorder(stop_after=2)
    client = EslClient(config(port), seen.append, sleep=sleep)
    try:
        await run_until(client, sleep.done)
    finally:
        await server.close()
    assert isinstance(client.last_error, ProtocolError)
    assert server.connections == 2 and seen == []
    assert sleep.delays[1] > sleep.delays[0] * 1.2  # accepted the password, then garbage: the wait grows
    assert client.status.state == "failing"


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


@pytest.mark.asyncio
async def test_wanted_events_reach_the_handler_and_the_rest_is_skipped():
    server = FakeFreeswitch()
    port = await server.start()
    everything = [f for f in parse_stream(server.recording) if isinstance(f, Event)]
    wanted = frozenset({"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"})
    got: list[Event] = []
    sleep = SleepRecorder(stop_after=1)
    client = EslClient(config(port, wanted_events=wanted), got.append, sleep=sleep)
    try:
        await run_until(client, sleep.done)
    finally:
        await server.close()
    assert got == [e for e in everything if e.name in wanted | {"BACKGROUND_JOB"}]
    assert got and len(got) < len(everything)


@pytest.mark.asyncio
async def test_a_late_reply_to_an_abandoned_api_call_is_not_handed_to_the_next_call():
    from adapters.esl_test_server import api_response, reply

    got_first = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Content-Type: auth/request\n\n")
        await reader.readuntil(b"\n\n")
        writer.write(reply("+OK accepted"))
        await reader.readuntil(b"\n\n")
        writer.write(reply("+OK event listener enabled json"))
        await reader.readuntil(b"\n\n")  # api first: answered only once the second command is in
        got_first.set()
        await reader.readuntil(b"\n\n")
        writer.write(api_response("answer to first\n") + api_response("answer to second\n"))
        await writer.drain()
        await reader.read()  # until the client goes
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    client = EslClient(config(server.sockets[0].getsockname()[1]))
    task = asyncio.create_task(client.run())
    try:
        await asyncio.wait_for(client.connected.wait(), GUARD)
        first = asyncio.create_task(client.api("first"))
        await asyncio.wait_for(got_first.wait(), GUARD)
        first.cancel()  # the caller gave up (its own timeout); FreeSWITCH will still answer it
        await asyncio.gather(first, return_exceptions=True)
        second = await asyncio.wait_for(client.api("second"), GUARD)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        server.close()
        await server.wait_closed()
    assert second.body == "answer to second\n"


def test_the_password_is_not_in_the_config_repr():
    assert "s3cret-value" not in repr(EslClientConfig(password="s3cret-value"))


def test_read_secret_drops_a_line_break_left_in_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PBX_TEST_ESL", "from-env\n")
    assert read_secret("PBX_TEST_ESL", None) == "from-env"


@pytest.mark.asyncio
async def test_backoff_starts_over_after_a_session_that_carried_events():
    from adapters.esl_test_server import heartbeat

    server = FakeFreeswitch(after_subscribe="streams", streams=[heartbeat()] * 4)  # one heartbeat, then it goes
    port = await server.start()
    sleep = SleepRecorder(stop_after=4)
    client = EslClient(config(port), sleep=sleep, rng=random.Random(7))
    try:
        await run_until(client, sleep.done)
    finally:
        await server.close()
    assert client.connections == 4
    assert all(d <= 0.5 * 1.2 for d in sleep.delays)  # reconnect_min each time, not 0.5, 1, 2, 4


@pytest.mark.asyncio
async def test_a_server_that_accepts_the_password_then_closes_at_once_gets_a_growing_backoff():
    server = FakeFreeswitch(after_subscribe="streams", streams=[b""] * 5)  # subscribed, then the socket goes
    port = await server.start()
    sleep = SleepRecorder(stop_after=5)
    client = EslClient(config(port, jitter=0.0), sleep=sleep)
    try:
        await run_until(client, sleep.done)
    finally:
        await server.close()
    assert client.connections == 5
    assert sleep.delays == [0.5, 1, 2, 4, 8]


@pytest.mark.asyncio
async def test_a_quiet_session_that_stayed_subscribed_long_enough_starts_the_backoff_over():
    server = FakeFreeswitch(after_subscribe="streams", streams=[b""] * 3)
    port = await server.start()
    sleep = SleepRecorder(stop_after=3)
    client = EslClient(config(port, jitter=0.0, stable_after=0.0), sleep=sleep)
    try:
        await run_until(client, sleep.done)
    finally:
        await server.close()
    assert sleep.delays == [0.5, 0.5, 0.5]  # with stable_after = 0 every subscription counts as a session that worked


@pytest.mark.asyncio
async def test_while_freeswitch_refuses_connections_it_is_probed_on_a_short_period_however_long_the_outage():
    server = FakeFreeswitch()
    port = await server.start()
    await server.close()
    sleep = SleepRecorder(stop_after=20)  # 20 refused connects: the old backoff would be at its 30 s ceiling
    client = EslClient(config(port, reconnect_max=30, probe_interval=0.5), sleep=sleep, rng=random.Random(3))
    await run_until(client, sleep.done)
    assert client.attempts == 20 and server.connections == 0
    assert max(sleep.delays) <= 0.5 * 1.2
    assert client.status.state == "unreachable" and "connect" in client.status.reason


@pytest.mark.asyncio
async def test_after_an_outage_the_client_is_back_as_soon_as_freeswitch_listens_again():
    from support.waiting import wait_until

    server = FakeFreeswitch(after_subscribe="silent")
    port = await server.start()
    client = EslClient(config(port, reconnect_min=0.01, reconnect_max=30, probe_interval=0.01))
    task = asyncio.create_task(client.run())
    try:
        await wait_until(lambda: client.connections == 1)
        await server.stop()
        attempts = client.attempts
        await wait_until(lambda: client.attempts >= attempts + 30)  # a long outage, many refused connects
        assert client.status.state == "unreachable"
        await server.start()
        await wait_until(lambda: client.connections == 2)
        assert client.status.state == "up"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.close()


@pytest.mark.asyncio
async def test_a_timeout_is_logged_with_its_reason(caplog: pytest.LogCaptureFixture):
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts the connection, never sends auth/request

    mute_server = await asyncio.start_server(mute, "127.0.0.1", 0)
    sleep = SleepRecorder(stop_after=1)
    client = EslClient(config(mute_server.sockets[0].getsockname()[1], connect_timeout=0.05), sleep=sleep)
    try:
        with caplog.at_level(logging.WARNING, logger="pbx_codes.esl"):
            await run_until(client, sleep.done)
    finally:
        mute_server.close()
    assert "no auth/request within 0.05 s" in client.status.reason
    assert "no auth/request within 0.05 s" in caplog.text
