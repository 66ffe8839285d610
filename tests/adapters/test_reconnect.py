"""The one reconnect policy of the AMI and ESL clients: what ended an attempt decides the wait before the next."""
from __future__ import annotations

import asyncio
import random

import pytest

from pbx_codes.adapters.reconnect import Backoff, BackoffPolicy, Ending

POLICY = BackoffPolicy(initial=0.5, maximum=30.0, jitter=0.0, probe_interval=0.5, refused_minimum=60.0)


def test_an_unreachable_peer_is_probed_on_the_short_period_however_many_attempts_failed() -> None:
    backoff = Backoff(POLICY)
    assert {backoff.after(Ending.UNREACHABLE) for _ in range(1000)} == {0.5}


def test_a_peer_that_accepts_then_breaks_waits_longer_each_time_up_to_the_maximum() -> None:
    backoff = Backoff(POLICY)
    assert [backoff.after(Ending.FAILED) for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]


def test_probing_an_outage_keeps_the_failure_count_of_the_broken_sessions_before_it() -> None:
    backoff = Backoff(POLICY)
    backoff.after(Ending.FAILED), backoff.after(Ending.FAILED)
    for _ in range(50):
        backoff.after(Ending.UNREACHABLE)
    assert backoff.after(Ending.FAILED) == 2.0  # still growing: the outage did not make the server good again


def test_a_refused_login_waits_at_least_the_minimum_even_with_jitter() -> None:
    backoff = Backoff(BackoffPolicy(jitter=0.2, refused_minimum=60.0), random.Random(5))
    waits = [backoff.after(Ending.REFUSED) for _ in range(200)]
    assert min(waits) >= 60.0 and max(waits) <= 72.0


def test_a_session_that_worked_starts_the_count_over() -> None:
    backoff = Backoff(POLICY)
    for _ in range(6):
        backoff.after(Ending.FAILED)
    assert backoff.after(Ending.ENDED) == 0.5 and backoff.after(Ending.FAILED) == 0.5


def test_jitter_stays_within_its_fraction() -> None:
    backoff = Backoff(BackoffPolicy(probe_interval=0.5, jitter=0.2), random.Random(1))
    waits = [backoff.after(Ending.UNREACHABLE) for _ in range(500)]
    assert 0.4 <= min(waits) < max(waits) <= 0.6


@pytest.mark.parametrize("bad", [{"initial": -1}, {"jitter": 1.0}, {"probe_interval": "fast"}])
def test_a_bad_policy_is_refused_with_its_field_named(bad) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        BackoffPolicy(**bad)


# --- the one reconnecting client shape ----------------------------------------------------------------------------

def test_the_ami_and_esl_clients_are_one_reconnecting_client_shape() -> None:
    from pbx_codes.adapters.ami_client import AmiClient
    from pbx_codes.adapters.esl_client import EslClient
    from pbx_codes.adapters.reconnect import ReconnectingClient

    for client in (AmiClient.__mro__, EslClient.__mro__):
        assert ReconnectingClient in client
    # the loop, the missed-window log and the status live once, in the shared class
    for name in ("run", "close", "report", "_up", "_ending", "_reason"):
        assert name not in vars(AmiClient) or name == "close"
        assert name not in vars(EslClient)


@pytest.mark.asyncio
async def test_esl_reconnect_records_the_missed_window_and_reports_it_for_metrics() -> None:
    from adapters.esl_test_server import PASSWORD, FakeFreeswitch, heartbeat
    from pbx_codes.adapters.esl_client import EslClient, EslClientConfig
    from support.waiting import wait_until

    server = FakeFreeswitch(after_subscribe="streams", streams=[heartbeat()] * 3)
    port = await server.start()
    client = EslClient(EslClientConfig(port=port, password=PASSWORD, reconnect_min=0.01, jitter=0.0))
    task = asyncio.create_task(client.run())
    try:
        await wait_until(lambda: len(client.missed_windows) >= 2, what="two reconnections")
        report = client.report()
        assert report["missed_windows"] >= 2 and report["connections"] >= 3 and report["part"].startswith("ESL ")
        assert all(start <= end for start, end in client.missed_windows)
    finally:
        await client.close()
        await asyncio.gather(task, return_exceptions=True)
        await server.close()
    assert task.done() and not task.cancelled()  # close() ends run() the same way for AMI and ESL


@pytest.mark.asyncio
async def test_an_async_esl_handler_gets_every_event_in_order_with_reading_paused_meanwhile() -> None:
    from adapters.esl_test_server import PASSWORD, FakeFreeswitch
    from pbx_codes.adapters.esl_client import EslClient, EslClientConfig
    from pbx_codes.protocols.esl import Event, parse_stream
    from support.waiting import SleepRecorder

    server = FakeFreeswitch()
    port = await server.start()
    expected = [f.name for f in parse_stream(server.recording) if isinstance(f, Event)]
    seen: list[str] = []

    async def slow(event: Event) -> None:
        await asyncio.sleep(0)  # yields to the loop: more bytes may arrive meanwhile
        seen.append(event.name)

    sleep = SleepRecorder(stop_after=1)
    client = EslClient(EslClientConfig(port=port, password=PASSWORD), slow, sleep=sleep)
    task = asyncio.create_task(client.run())
    try:
        await asyncio.wait_for(sleep.done.wait(), 20)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.close()
    assert seen == expected and seen


@pytest.mark.asyncio
async def test_a_cut_connection_is_reconnected_and_its_gap_is_recorded() -> None:
    from adapters.ami_test_server import AmiTestServer
    from pbx_codes.adapters.ami_client import AmiClient, AmiSettings
    from support.waiting import wait_until

    server = await AmiTestServer(ready_after_filter=None).start()
    client = AmiClient(AmiSettings(port=server.port, backoff_initial=0.01, jitter=0.0), "s3cret", lambda e: None)
    task = asyncio.create_task(client.run())
    try:
        await wait_until(lambda: client.connections == 1, what="the first login")
        client.cut()
        await wait_until(lambda: client.connections == 2, what="the login after the cut")
        assert len(client.missed_windows) == 1 and server.logins == 2
        assert client.report()["state"] == "up"
    finally:
        await client.close()
        await asyncio.gather(task, return_exceptions=True)
        await server.close()
