"""The AMI client against the test AMI server on 127.0.0.1 (ami_test_server), speaking recorded Asterisk bytes."""
from __future__ import annotations

import asyncio
import random

import pytest

from pbx_codes.adapters.ami_client import AmiAuthError, AmiClient, AmiSettings
from pbx_codes.adapters.secrets import SecretError, read_secret
from pbx_codes.protocols.ami import AmiParser, Event

from adapters.ami_test_server import AmiSession, AmiTestServer, load_recording

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


async def wait_until(predicate, limit: float = 10.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)
    await asyncio.wait_for(poll(), limit)


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


@pytest.mark.asyncio
async def test_refused_login_raises_and_does_not_retry() -> None:
    server = await FakeAsterisk(secret="right").start()
    client = AmiClient(settings(server.port), "wrong", lambda e: None)
    try:
        with pytest.raises(AmiAuthError):
            await asyncio.wait_for(client.run(), 10)
        assert server.connections == 1
        assert "wrong" not in repr(client)
    finally:
        await server.close()


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
    client = AmiClient(AmiSettings(backoff_initial=1.0, backoff_max=8.0, jitter=0.2), "x", lambda e: None,
                       rng=random.Random(7))
    delays = [client._backoff(n) for n in range(6)]
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
