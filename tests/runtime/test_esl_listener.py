"""`run_freeswitch` end to end: ESL client -> observer -> real resolver -> bus, and the hook endpoint, on 127.0.0.1.

The ESL side is `FakeFreeswitch` streaming two recorded bridged calls byte for byte (``event json ALL``, so most
events are ones the listener skips unread): the carrier's ``409 Not enough money`` on the first connection, which
the server then drops without a disconnect notice, and ``503 Simultaneous calls limit reached`` on the
reconnected second one. The expected annotations are the offline `replay` of the same bytes with the same
resolver. "Settled" means the client has connected a third time: each stream is written before its socket is
closed and the client handles frames in order, so by then every frame of both streams has been handled (no clock
involved).
"""
from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any
from urllib.parse import urlencode

import pytest

from adapters.esl_test_server import PASSWORD, FakeFreeswitch, recorded_events
from pbx_codes.catalog import load_catalogs
from pbx_codes.model import Category, Observation
from pbx_codes.observers.freeswitch import replay
from pbx_codes.resolve import Resolver
from pbx_codes.runtime.esl_listener import run_freeswitch
from support.hook_client import post_hook
from support.waiting import GUARD, eventually, wait_until

CALL_409 = "409_not_enough_money.bridge.json.esl.txt"
CALL_503 = "503_simul_limit.bridge.json.esl.txt"
# The legs of each recorded call: B towards the carrier, A the bridging inbound leg (UUIDs from summary.json).
LEGS_409 = {"B": "c09b4653-4507-4bde-ab6c-ac2ecdad3ff0", "A": "965ab554-3188-43ae-ad70-1481e3bbdeac"}
LEGS_503 = {"B": "b1480bf6-4b5e-4377-bbd5-982959853bec", "A": "3924053d-9ea7-4383-a2ce-d86ec3da537d"}
PASSWORD_ENV = "PBXC_TEST_LISTENER_ESL_PASSWORD"


class RecordingBus:
    """The bus as the listener sees it: `publish` only."""

    def __init__(self) -> None:
        self.annotations: list[Any] = []

    def publish(self, annotation: Any) -> None:
        self.annotations.append(annotation)


def real_resolver() -> Resolver:
    return Resolver(load_catalogs(), bindings={"gw409": "lifecell", "gw503": "lifecell"})


def without_notice(stream: bytes) -> bytes:
    """The stream cut before FreeSWITCH's disconnect notice: the socket just goes, as when FreeSWITCH dies."""
    cut = stream.rindex(b"Content-Type: text/disconnect-notice")
    assert cut > 0
    return stream[:cut]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def section(esl_port: int, hook_port: int, **extra: Any) -> dict[str, Any]:
    base = {"host": "127.0.0.1", "port": esl_port, "password_env": PASSWORD_ENV, "hook_port": hook_port,
            "reconnect_min": 0.01, "reconnect_max": 0.05, "heartbeat_timeout": GUARD}
    base.update(extra)
    return base


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.mark.asyncio
async def test_failed_legs_reach_the_bus_once_each_across_a_dropped_connection(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    first, second = recorded_events(CALL_409), recorded_events(CALL_503)
    resolver = real_resolver()
    expected = replay(first, resolver) + replay(second, resolver)
    server = FakeFreeswitch(after_subscribe="streams", streams=[without_notice(first), second])
    esl_port = await server.start()
    bus = RecordingBus()
    task = asyncio.create_task(run_freeswitch(section(esl_port, free_port(), hook=False), resolver, bus))
    try:
        await wait_until(lambda: server.connections >= 3)  # settled
        await wait_until(lambda: len(bus.annotations) >= len(expected))
    finally:
        await stop(task)
        await server.close()
    assert server.streamed == 2 and server.auth_attempts[:3] == [PASSWORD] * 3
    assert "event json " in server.commands[1]
    got = [a.to_dict() for a in bus.annotations]
    assert got == [a.to_dict() for a in expected], "the live path must equal the offline replay"
    legs = [a.observation.leg_id for a in bus.annotations]
    assert len(legs) == len(set(legs)) == 6, "exactly one annotation per failed leg (3 legs per call)"
    by_leg = {a.observation.leg_id: a for a in bus.annotations}
    for legs_of_call, code, phrase, category in ((LEGS_409, "409", "Not enough money", Category.BILLING),
                                                 (LEGS_503, "503", "Simultaneous calls limit reached",
                                                  Category.CAPACITY)):
        for role in ("B", "A"):
            annotation = by_leg[legs_of_call[role]]
            assert (annotation.code, annotation.phrase, annotation.catalog) == (code, phrase, "lifecell"), role
            assert annotation.category is category
    # The call after the reconnect was annotated too, and only after the first call's legs.
    assert legs.index(LEGS_503["B"]) > legs.index(LEGS_409["A"])


@pytest.mark.asyncio
async def test_hook_endpoint_answers_while_esl_is_down(monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture):
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    esl_port, hook_port = free_port(), free_port()  # nothing listens on esl_port: FreeSWITCH is down
    bus = RecordingBus()
    task = asyncio.create_task(run_freeswitch(section(esl_port, hook_port), real_resolver(), bus))
    try:
        with caplog.at_level(logging.WARNING, logger="pbx_codes.esl"):
            await wait_until(lambda: "reconnecting in" in caplog.text)  # the ESL side failed (logged once)
            fields = {"uuid": "b-leg", "call_uuid": "a-leg", "direction": "outbound", "sip_gateway_name": "gw409",
                      "sip_invite_failure_status": "409", "sip_invite_failure_phrase": "Not enough money",
                      "sip_hangup_disposition": "recv_refuse", "hangup_cause": "NORMAL_UNSPECIFIED"}

            # the endpoint starts beside the client; retry until it listens
            status, payload = await eventually(lambda: post_hook(hook_port, urlencode(fields).encode()),
                                               retry_on=(ConnectionRefusedError,), what="the hook endpoint answers")
            assert not task.done(), "run_freeswitch keeps running while FreeSWITCH is unreachable"
    finally:
        await stop(task)
    assert status == 200
    lines = dict(line.split("=", 1) for line in payload.decode().splitlines() if line)
    assert lines["pbx_phrase"] == "Not enough money" and lines["pbx_catalog"] == "lifecell"
    assert bus.annotations == [], "hook_publish is off by default: the hook does not feed the bus"


@pytest.mark.asyncio
async def test_every_live_call_shape_reaches_the_bus_as_replay_gives_it_across_drops(monkeypatch: pytest.MonkeyPatch):
    """Each live2 capture on its own connection, every other one cut before FreeSWITCH's disconnect notice: every
    leg of every call shape is on the bus once, as the offline replay (and the table of expected annotations)
    says, answered legs included."""
    from observers.freeswitch_live2 import CAPTURES, EXPECTED, by_role, roles

    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    resolver = real_resolver()
    streams = [recorded_events(f"live2/{c}.json.esl.txt") for c in CAPTURES]
    streams = [without_notice(s) if i % 2 else s for i, s in enumerate(streams)]
    expected = [a.to_dict() for c in CAPTURES for a in replay(recorded_events(f"live2/{c}.json.esl.txt"), resolver)]
    server = FakeFreeswitch(after_subscribe="streams", streams=streams)
    esl_port = await server.start()
    bus = RecordingBus()
    task = asyncio.create_task(run_freeswitch(section(esl_port, free_port(), hook=False), resolver, bus))
    try:
        await wait_until(lambda: server.connections > len(streams))  # settled: every stream was handled
    finally:
        await stop(task)
        await server.close()
    assert [a.to_dict() for a in bus.annotations] == expected
    for capture in CAPTURES:
        mine = [a for a in bus.annotations if a.observation.leg_id in roles(capture)]
        assert by_role(capture, mine) == EXPECTED[capture], capture


@pytest.mark.asyncio
async def test_the_top_level_language_reaches_pbx_reason_through_the_hook(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Any):
    from pbx_codes.config import load_config

    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    hook_port = free_port()
    path = tmp_path / "pbx-codes.toml"
    path.write_text(f'language = "uk"\n[freeswitch]\nhost = "127.0.0.1"\nport = {free_port()}\n'
                    f'password_env = "{PASSWORD_ENV}"\nhook_port = {hook_port}\nesl = false\n', encoding="utf-8")
    config = load_config(path)
    resolver = real_resolver()
    task = asyncio.create_task(run_freeswitch(config.freeswitch, resolver, RecordingBus()))
    fields = {"uuid": "b-leg", "call_uuid": "a-leg", "direction": "outbound", "sip_gateway_name": "gw409",
              "sip_invite_failure_status": "409", "sip_invite_failure_phrase": "Not enough money",
              "sip_hangup_disposition": "recv_refuse", "sip_reply_port": "5090", "hangup_cause": "NORMAL_UNSPECIFIED"}

    try:  # the endpoint starts with the task; retry until it listens
        status, payload = await eventually(lambda: post_hook(hook_port, urlencode(fields).encode()),
                                           retry_on=(ConnectionRefusedError,), what="the hook endpoint answers")
    finally:
        await stop(task)
    lines = dict(line.split("=", 1) for line in payload.decode().splitlines() if line)
    texts = resolver.resolve(Observation(sip_code="409", phrase="Not enough money", catalog="lifecell")).texts
    assert status == 200 and lines["pbx_reason"] == texts["uk"] != texts["en"]


def test_the_event_a_leg_is_decided_on_is_always_subscribed(monkeypatch: pytest.MonkeyPatch) -> None:
    from pbx_codes.runtime.esl_listener import client_config

    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    narrow = client_config({"password_env": PASSWORD_ENV, "events": ["CHANNEL_HANGUP"]})
    wide = client_config({"password_env": PASSWORD_ENV, "events": ["ALL"]})
    assert narrow.events == ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE") and wide.events == ("ALL",)
