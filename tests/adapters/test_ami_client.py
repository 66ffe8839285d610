"""The AMI client against the test AMI server on 127.0.0.1 (ami_test_server), speaking recorded Asterisk bytes."""
from __future__ import annotations

import asyncio
import logging
import random

import pytest

from adapters.ami_test_server import AmiSession, AmiTestServer, load_recording
from pbx_codes.adapters.ami_client import AmiClient, AmiSettings
from pbx_codes.adapters.secrets import SecretError, read_secret
from pbx_codes.protocols.ami import AmiParser, Event
from support.waiting import SleepRecorder, wait_until

RECORDING = load_recording("money409")
# The recorded events, without the recorded responses (the test server answers our own ActionIDs).
EVENT_FRAMES = RECORDING.events


class FakeAsterisk(AmiTestServer):
    """Accepts one secret; after the last filter plays the recorded events (then drops, if asked)."""

    def __init__(self, *, secret: str = "s3cret", silent: bool = False, drop_after_events: bool = False) -> None:
        super().__init__(username="bench", secret=secret, banner=RECORDING.banner, answer_pings=not silent,
                         on_ready=self._play)
        self.drop_after_events = drop_after_events

    async def _play(self, session: AmiSession) -> None:
        await session.play(EVENT_FRAMES)
        if self.drop_after_events:
            await session.kill()


def settings(port: int, **kw) -> AmiSettings:
    base = dict(port=port, username="bench", filters=("Event: DialEnd", "Event: Hangup", "Event: SoftHangupRequest"),
                wanted_events=frozenset({"Hangup", "DialEnd"}), backoff_initial=0.01, backoff_max=0.05,
                ping_interval=30.0, ping_timeout=5.0, action_timeout=5.0)
    base.update(kw)
    return AmiSettings(**base)


@pytest.mark.asyncio
async def test_login_filters_and_events_reach_the_callback() -> None:
    server = await FakeAsterisk().start()
    events: list[Event] = []
    client = AmiClient(settings(server.port), "s3cret", events.append)
    task = asyncio.ensure_future(client.run())
    try:
        await wait_until(lambda: len(events) >= 3)
        assert [e.name for e in events] == ["DialEnd", "Hangup", "Hangup"]
        assert client.banner == "11.0.0"
        login = server.actions[0]
        assert login["Action"] == "Login" and login["Username"] == "bench" and login["Events"] == "on"
        assert [a["Filter"] for a in server.actions if a["Action"] == "Filter"] == list(settings(0).filters)
        pong = await client.send_action("Ping")
        assert pong.get("Ping") == "Pong"
    finally:
        await client.close()
        task.cancel()
        await server.close()


async def run_until_parked(client: AmiClient, sleep: SleepRecorder) -> None:
    """Run the client until its sleep recorder has seen enough waits, then stop it."""
    task = asyncio.ensure_future(client.run())
    try:
        await asyncio.wait_for(asyncio.shield(sleep.done.wait()), 20)
        assert not task.done() or task.exception() is None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()


@pytest.mark.asyncio
async def test_a_refused_login_never_ends_run_and_is_retried_patiently(caplog: pytest.LogCaptureFixture) -> None:
    server = await FakeAsterisk(secret="right").start()
    sleep = SleepRecorder(stop_after=3)
    client = AmiClient(settings(server.port, backoff_max=30.0, refused_backoff=60.0), "wrong", lambda e: None,
                       sleep=sleep)
    try:
        with caplog.at_level(logging.INFO, logger="pbx_codes.adapters.ami_client"):
            await run_until_parked(client, sleep)  # run() did not raise: it went on to wait and try again
    finally:
        await server.close()
    assert server.refused_logins == 3
    assert all(d >= 60.0 for d in sleep.delays)
    assert (client.status.state, client.status.refusals) == ("refused", 3)
    assert "Authentication failed" in client.status.reason
    refused_lines = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused_lines) == 1  # once per state change, not once per attempt
    assert "wrong" not in repr(client) and "wrong" not in caplog.text


@pytest.mark.asyncio
async def test_while_asterisk_refuses_connections_it_is_probed_on_a_short_period_however_long_the_outage() -> None:
    server = await FakeAsterisk().start()
    port = server.port
    await server.stop()
    sleep = SleepRecorder(stop_after=20)  # 20 refused connects: the old backoff would be at its 30 s ceiling
    client = AmiClient(settings(port, backoff_initial=0.5, backoff_max=30.0, probe_interval=0.5, jitter=0.2),
                       "s3cret", lambda e: None, sleep=sleep, rng=random.Random(3))
    await run_until_parked(client, sleep)
    assert client.attempts == 20 and client.connections == 0
    assert max(sleep.delays) <= 0.5 * 1.2
    assert client.status.state == "unreachable" and "connect" in client.status.reason


@pytest.mark.asyncio
async def test_after_an_outage_the_client_is_back_as_soon_as_asterisk_listens_again() -> None:
    server = await FakeAsterisk().start()
    client = AmiClient(settings(server.port, backoff_initial=0.01, backoff_max=30.0, probe_interval=0.01),
                       "s3cret", lambda e: None)
    task = asyncio.ensure_future(client.run())
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
        await client.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.close()


class GarbageAfterLogin(FakeAsterisk):
    """Accepts the login and the filters, then sends a line over the parser's bound (or nothing, and closes)."""

    def __init__(self, garbage: bytes) -> None:
        super().__init__()
        self.garbage = garbage

    async def _play(self, session: AmiSession) -> None:
        await session.kill(self.garbage)


@pytest.mark.asyncio
@pytest.mark.parametrize("garbage", [b"X" * 9000 + b"\r\n\r\n", b""], ids=["garbage", "closed-at-once"])
async def test_a_server_that_accepts_the_login_then_breaks_gets_a_growing_backoff(garbage: bytes) -> None:
    server = await GarbageAfterLogin(garbage).start()
    sleep = SleepRecorder(stop_after=5)
    client = AmiClient(settings(server.port, backoff_initial=1.0, backoff_max=30.0, jitter=0.0), "s3cret",
                       lambda e: None, sleep=sleep)
    try:
        await run_until_parked(client, sleep)
    finally:
        await server.close()
    assert server.logins == 5
    assert sleep.delays == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert client.status.state == "failing"


@pytest.mark.asyncio
async def test_a_quiet_session_that_stayed_up_long_enough_starts_the_backoff_over() -> None:
    server = await GarbageAfterLogin(b"").start()  # logs in, then closes without a frame
    sleep = SleepRecorder(stop_after=3)
    client = AmiClient(settings(server.port, backoff_initial=1.0, jitter=0.0, stable_after=0.0), "s3cret",
                       lambda e: None, sleep=sleep)
    try:
        await run_until_parked(client, sleep)
    finally:
        await server.close()
    assert sleep.delays == [1.0, 1.0, 1.0]  # with stable_after = 0 every login counts as a session that worked


@pytest.mark.asyncio
async def test_a_session_that_carried_events_starts_the_backoff_over() -> None:
    server = await FakeAsterisk(drop_after_events=True).start()  # plays the recorded call, then drops
    sleep = SleepRecorder(stop_after=4)
    client = AmiClient(settings(server.port, backoff_initial=1.0, backoff_max=30.0, jitter=0.0), "s3cret",
                       lambda e: None, sleep=sleep)
    try:
        await run_until_parked(client, sleep)
    finally:
        await server.close()
    assert client.connections == 4
    assert sleep.delays == [1.0, 1.0, 1.0, 1.0]


@pytest.mark.asyncio
async def test_a_login_that_times_out_is_logged_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        await reader.read()  # reads the Login and never answers

    mute_server = await asyncio.start_server(mute, "127.0.0.1", 0)
    sleep = SleepRecorder(stop_after=1)
    client = AmiClient(settings(mute_server.sockets[0].getsockname()[1], action_timeout=0.05), "s3cret",
                       lambda e: None, sleep=sleep)
    try:
        with caplog.at_level(logging.WARNING, logger="pbx_codes.adapters.ami_client"):
            await run_until_parked(client, sleep)
    finally:
        mute_server.close()
    assert "no answer to Login within 0.05 s" in client.status.reason
    assert "no answer to Login within 0.05 s" in caplog.text


@pytest.mark.asyncio
async def test_reconnects_after_the_server_drops_and_logs_the_missed_window() -> None:
    server = await FakeAsterisk(drop_after_events=True).start()
    events: list[Event] = []
    client = AmiClient(settings(server.port), "s3cret", events.append, rng=random.Random(1))
    task = asyncio.ensure_future(client.run())
    try:
        await wait_until(lambda: len(client.missed_windows) >= 2)
        assert server.logins >= 3
        start, end = client.missed_windows[0]
        assert start <= end
        assert [e.name for e in events[:3]] == ["DialEnd", "Hangup", "Hangup"]
    finally:
        await client.close()
        task.cancel()
        await server.close()


@pytest.mark.asyncio
async def test_watchdog_drops_a_silent_server_and_reconnects() -> None:
    server = await FakeAsterisk(silent=True).start()
    client = AmiClient(settings(server.port, ping_interval=0.02, ping_timeout=0.05), "s3cret", lambda e: None)
    task = asyncio.ensure_future(client.run())
    try:
        # The client counts a connection once its filters are in, after the server counted the login.
        await wait_until(lambda: client.connections >= 2)
        assert sum(a["Action"] == "Ping" for a in server.actions) >= 1
        assert server.logins >= 2
    finally:
        await client.close()
        task.cancel()
        await server.close()


@pytest.mark.asyncio
async def test_unreachable_server_is_retried_with_backoff() -> None:
    server = await FakeAsterisk().start()
    port = server.port
    await server.stop()
    client = AmiClient(settings(port), "s3cret", lambda e: None)
    task = asyncio.ensure_future(client.run())
    try:
        await wait_until(lambda: client.attempts >= 3)
        assert client.connections == 0
    finally:
        await client.close()
        task.cancel()


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    from pbx_codes.adapters.reconnect import Backoff, Ending

    backoff = Backoff(AmiSettings(backoff_initial=1.0, backoff_max=8.0, jitter=0.2).backoff, random.Random(7))
    delays = [backoff.after(Ending.FAILED) for _ in range(6)]
    for n, delay in enumerate(delays):
        base = min(8.0, 2.0 ** n)
        assert base * 0.8 <= delay <= base * 1.2


def test_read_secret_prefers_env_then_file_and_never_echoes(tmp_path, monkeypatch) -> None:
    path = tmp_path / "ami.secret"
    path.write_text("from-file\n")
    monkeypatch.setenv("PBXC_TEST_SECRET", "from-env")
    assert read_secret("PBXC_TEST_SECRET", path) == "from-env"
    monkeypatch.delenv("PBXC_TEST_SECRET")
    assert read_secret("PBXC_TEST_SECRET", path) == "from-file"
    path.write_text("")
    with pytest.raises(SecretError) as info:
        read_secret("PBXC_TEST_SECRET", path)
    assert "from-file" not in str(info.value)
    with pytest.raises(SecretError):
        read_secret(None, tmp_path / "missing")


def test_fixture_event_frames_are_real_events() -> None:
    events = AmiParser().feed(b"".join(EVENT_FRAMES))
    assert len(events) == len(EVENT_FRAMES) > 50
