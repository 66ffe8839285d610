"""`run_asterisk` end to end: the AMI listener and the FastAGI server against Asterisk-like peers on 127.0.0.1.

The AMI side is `AmiTestServer` streaming the recorded ``limit503`` call (503 Simultaneous calls limit reached on
the carrier trunk); the carrier's phrase is in no event, only in ``Getvar HANGUPCAUSE(<B-leg>,tech)``, so a phrase
on the bus proves the listener asked for it. The resolver is the real one with the shipped catalogs, the trunk
bound to lifecell. "Settled" below means the client's watchdog has sent two Pings since the stream was written:
the answer to the first was read after every streamed frame, so every event has been handled (no clock involved).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

import pytest
import pytest_asyncio

from adapters.agi_test_client import agi_request, play_res_agi
from adapters.ami_test_server import AmiSession, AmiTestServer, load_recording, renumber
from pbx_codes.adapters.ami_client import AmiSettings
from pbx_codes.catalog import load_catalogs
from pbx_codes.model import Category, Retry, Side
from pbx_codes.protocols.agi import unquote_args
from pbx_codes.protocols.ami import Event as AmiEvent
from pbx_codes.resolve import Resolver
from pbx_codes.runtime.ami_listener import AmiListener, run_asterisk
from pbx_codes.writeback.agi_annotate import CDR_FIELDS, SEPARATOR, own_values_expression
from support.waiting import eventually, wait_until

SECRET_ENV = "PBXC_TEST_LISTENER_AMI_SECRET"
SECRET = "Zq9-listener-secret-7f3a"
PHRASE = "Simultaneous calls limit reached"
TECH_VALUE = f"SIP 503 {PHRASE}"

RECORDING = load_recording("limit503")
CALL_1 = list(RECORDING.frames)
A_LEG, B_LEG, B_UID = "PJSIP/caller-00000006", "PJSIP/trunk-00000007", "1795422912.13"
# A second, distinct call: the same carrier answer under other channel names and ids.
CALL_2 = renumber(CALL_1, {b"1795422912.12": b"1795422999.20", b"1795422912.13": b"1795422999.21",
                           b"caller-00000006": b"caller-00000010", b"trunk-00000007": b"trunk-00000011"})
A_LEG_2, B_LEG_2, B_UID_2 = "PJSIP/caller-00000010", "PJSIP/trunk-00000011", "1795422999.21"
VARIABLES = {"HANGUPCAUSE_KEYS()": f"{B_LEG},{B_LEG_2}", f"HANGUPCAUSE({B_LEG},tech)": TECH_VALUE,
             f"HANGUPCAUSE({B_LEG_2},tech)": TECH_VALUE}


class RecordingBus:
    """The bus as the listener sees it: `publish` only."""

    def __init__(self) -> None:
        self.annotations: list[Any] = []

    def publish(self, annotation: Any) -> None:
        self.annotations.append(annotation)


async def settled(session: AmiSession) -> None:
    """Every frame written to `session` so far has been handled by the client (see the module docstring)."""
    pings = session.count("Ping")
    await wait_until(lambda: session.count("Ping") >= pings + 2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def asterisk_config(ami_port: int, agi_port: int) -> dict[str, Any]:
    return {
        "ami": {"enabled": True, "server_filters": True, "host": "127.0.0.1", "port": ami_port, "username": "pbx-codes",
                "secret_env": SECRET_ENV, "ping_interval": 0.05, "ping_timeout": 5.0, "backoff_max": 0.3},
        "agi": {"enabled": True, "host": "127.0.0.1", "port": agi_port, "timeout": 5.0},
    }


def assert_limit503(annotation: Any, b_leg: str, b_uid: str) -> None:
    assert annotation.catalog == "lifecell"
    assert annotation.code == "503"
    assert annotation.phrase == PHRASE
    assert annotation.category is Category.CAPACITY
    assert annotation.retry is Retry.FAILOVER
    obs = annotation.observation
    assert (obs.channel, obs.leg_id, obs.trunk, obs.hangup_by) == (b_leg, b_uid, "trunk", Side.CARRIER)


def assert_secret_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert caplog.records, "nothing was logged: the check below would prove nothing"
    assert SECRET not in caplog.text
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert SECRET not in repr(record.args)


def getvars(server: AmiTestServer) -> list[tuple[str, str]]:
    return [(a["Channel"], a["Variable"]) for a in server.actions if a.get("Action") == "Getvar"]


class Harness:
    """`run_asterisk` running against a test AMI server, with a recording bus and the real resolver."""

    def __init__(self, server: AmiTestServer, bus: RecordingBus, task: asyncio.Task[None], agi_port: int) -> None:
        self.server = server
        self.bus = bus
        self.task = task
        self.agi_port = agi_port

    async def session(self, number: int) -> AmiSession:
        """The `number`-th AMI connection (1-based), once logged in with its filters set."""
        sessions = self.server.sessions
        await wait_until(lambda: len(sessions) >= number and sessions[number - 1].ready.is_set())
        return sessions[number - 1]


@pytest_asyncio.fixture
async def harness(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    server = await AmiTestServer(secret=SECRET, variables=VARIABLES).start()
    bus = RecordingBus()
    resolver = Resolver(load_catalogs(), bindings={"trunk": "lifecell"})
    agi_port = free_port()
    task = asyncio.ensure_future(run_asterisk(asterisk_config(server.port, agi_port), resolver, bus))
    yield Harness(server, bus, task, agi_port)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await server.stop()


# -- a scripted Asterisk on the FastAGI side ----------------------------------------------------------------------

async def agi_connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect once the FastAGI server started by `run_asterisk` is listening."""
    return await eventually(lambda: asyncio.open_connection("127.0.0.1", port), retry_on=(ConnectionRefusedError,),
                            what=f"FastAGI listening on {port}")


async def asterisk_agi_call(port: int, request: bytes, variables: dict[str, str]) -> list[list[str]]:
    """Plays res_agi: sends the request, answers GET FULL VARIABLE from `variables` and SET VARIABLE with
    ``200 result=1``, until the server closes; returns every command as res_agi would split it."""
    reader, writer = await agi_connect(port)
    received = await play_res_agi(reader, writer, request, {name: value.encode() for name, value in variables.items()})
    return [unquote_args(line.decode("utf-8").rstrip("\n")) for line in received]


def combined_get(bleg: str) -> dict[str, str]:
    """What ``annotate`` asks (the channel's own values, then the listed leg's causes), answered as Asterisk would
    for the limit503 call."""
    own = own_values_expression(leg_told=False)
    leg = f"${{HANGUPCAUSE({bleg},ast)}}{SEPARATOR}${{HANGUPCAUSE({bleg},tech)}}"
    return {own: SEPARATOR.join((bleg, "CONGESTION", bleg, "", "34", "", "", "", "", bleg)),
            leg: SEPARATOR.join(("Circuit/channel congestion", TECH_VALUE))}


# -- tests ---------------------------------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_failed_leg_is_published_once_with_the_fetched_phrase_and_the_lifecell_verdict(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    session = await harness.session(1)
    await session.play(CALL_1)
    await settled(session)
    (annotation,) = harness.bus.annotations
    assert_limit503(annotation, B_LEG, B_UID)
    # HANGUPCAUSE of a leg Asterisk holds nothing for logs a WARNING: the keys are asked first.
    assert getvars(harness.server) == [(A_LEG, "HANGUPCAUSE_KEYS()"), (A_LEG, f"HANGUPCAUSE({B_LEG},tech)")]
    login = session.actions[0]
    assert login["Action"] == "Login" and login["Secret"] == SECRET and harness.server.logins == 1
    assert_secret_never_logged(caplog)


@pytest.mark.asyncio
async def test_server_side_filters_are_the_observer_events(harness: Harness) -> None:
    session = await harness.session(1)
    assert session.filters == ["Event: DialBegin", "Event: DialEnd", "Event: DialState", "Event: Hangup",
                               "Event: HangupRequest", "Event: SoftHangupRequest", "Event: UserEvent"]


@pytest.mark.asyncio
async def test_refused_getvar_still_gives_one_annotation_with_the_code_verdict(harness: Harness) -> None:
    # Asterisk does not know the A-leg (its Newchannel is not played): Getvar answers "No such channel".
    session = await harness.session(1)
    unknown_a_leg = [f for f in CALL_1 if not (f.startswith(b"Event: Newchannel") and A_LEG.encode() in f)]
    await session.play(unknown_a_leg)
    await settled(session)
    (annotation,) = harness.bus.annotations
    assert getvars(harness.server) == [(A_LEG, "HANGUPCAUSE_KEYS()")]
    assert annotation.code == "503" and annotation.phrase is None and not annotation.exact
    assert annotation.category is Category.CAPACITY and annotation.retry is Retry.FAILOVER


@pytest.mark.asyncio
async def test_listener_reconnects_after_the_server_dies_logs_the_gap_and_annotates_the_next_call(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    first = await harness.session(1)
    await first.play(CALL_1)
    await settled(first)
    assert len(harness.bus.annotations) == 1
    lost_call = renumber(CALL_1, {b"1795422912.1": b"1795422977.1", b"-0000000": b"-0000007"})
    await first.kill(partial=lost_call[3][: len(lost_call[3]) // 2])  # dies in the middle of a frame

    second = await harness.session(2)
    await second.play(CALL_2)
    await settled(second)
    assert len(harness.bus.annotations) == 2
    assert_limit503(harness.bus.annotations[1], B_LEG_2, B_UID_2)
    assert getvars(harness.server)[2:] == [(A_LEG_2, "HANGUPCAUSE_KEYS()"), (A_LEG_2, f"HANGUPCAUSE({B_LEG_2},tech)")]

    client_log = [r for r in caplog.records if r.name == "pbx_codes.adapters.ami_client"]
    assert any(r.levelno == logging.WARNING and "were missed while disconnected" in r.getMessage()
               for r in client_log)
    assert any(r.getMessage().startswith("AMI reconnect to 127.0.0.1:") for r in client_log)
    assert harness.server.logins == 2
    assert_secret_never_logged(caplog)


@pytest.mark.asyncio
async def test_fastagi_keeps_annotating_while_ami_is_down_and_ami_comes_back(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    await harness.session(1)
    await harness.server.stop()  # Asterisk's manager is gone: connects are refused from now on
    refused_before = len(caplog.records)

    def refused_attempts() -> int:
        return sum(r.name == "pbx_codes.adapters.ami_client" and r.levelno == logging.WARNING
                   and f"AMI 127.0.0.1:{harness.server.port}:" in r.getMessage()
                   for r in caplog.records[refused_before:])
    await wait_until(lambda: refused_attempts() >= 2)  # it keeps retrying, with backoff in between

    request = agi_request("annotate", channel=A_LEG, uniqueid="1795422912.12", linkedid="1795422912.12", dnid="503")
    commands = await asterisk_agi_call(harness.agi_port, request, combined_get(B_LEG))
    written = {words[2]: words[3] for words in commands if words[:2] == ["SET", "VARIABLE"]}
    assert list(written) == [f"CDR({name})" for name in (*CDR_FIELDS, "pbx_attempts")]
    assert written["CDR(pbx_catalog)"] == "lifecell"
    assert written["CDR(pbx_code)"] == "503"
    assert written["CDR(pbx_phrase)"] == PHRASE
    assert written["CDR(pbx_category)"] == "capacity"
    assert written["CDR(pbx_retry)"] == "failover"
    assert written["CDR(pbx_q850)"] == "34"
    # With the AMI listener configured, it publishes every leg it sees: for a leg, the AGI path only writes the CDR.
    assert harness.bus.annotations == []

    await harness.server.start()
    session = await harness.session(2)
    await session.play(CALL_2)
    await settled(session)
    (annotation,) = harness.bus.annotations
    assert_limit503(annotation, B_LEG_2, B_UID_2)
    assert any("were missed while disconnected" in r.getMessage() for r in caplog.records)
    assert_secret_never_logged(caplog)


@pytest.mark.asyncio
async def test_an_attempt_that_created_no_leg_reaches_the_bus_through_fastagi_while_ami_is_on(
        harness: Harness) -> None:
    await harness.session(1)
    # Qualify marked the trunk down: Dial created no channel, so AMI has no event of it; the dialplan says so by
    # passing an empty leg.
    own = own_values_expression(leg_told=True)
    request = agi_request("annotate", "", "CHANUNAVAIL", "lifecell", "trunk", channel=A_LEG,
                          uniqueid="1795422912.12", linkedid="1795422912.12")
    commands = await asterisk_agi_call(harness.agi_port, request,
                                       {own: SEPARATOR.join(("", "CHANUNAVAIL", A_LEG, "", "34", "", "", "", "", ""))})
    written = {words[2]: words[3] for words in commands if words[:2] == ["SET", "VARIABLE"]}
    assert (written["CDR(pbx_outcome)"], written["CDR(pbx_category)"], written["CDR(pbx_retry)"]) == (
        "unreachable", "network", "failover")
    (annotation,) = harness.bus.annotations
    assert (annotation.observation.channel, annotation.observation.call_id) == (None, "1795422912.12")


@pytest.mark.asyncio
async def test_a_refused_login_keeps_fastagi_answering_and_never_reveals_the_secret(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    server = await AmiTestServer(secret="the-right-one").start()
    resolver = Resolver(load_catalogs(), bindings={"trunk": "lifecell"})
    agi_port = free_port()
    task = asyncio.ensure_future(run_asterisk(asterisk_config(server.port, agi_port), resolver, RecordingBus()))
    try:
        await wait_until(lambda: server.refused_logins == 1)
        commands = await asterisk_agi_call(agi_port, agi_request("annotate", channel=A_LEG, uniqueid="1795422912.12"),
                                           combined_get(B_LEG))
        assert ["SET", "VARIABLE", "CDR(pbx_category)", "capacity"] in commands
        assert not task.done(), "a refused AMI login must not stop run_asterisk"
        assert server.connections == 1  # and the refused login is not retried at once
        assert_secret_never_logged(caplog)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.stop()


def ami_event(name: str, **headers: str) -> AmiEvent:
    return AmiEvent(name, "\r\n".join([f"Event: {name}", *(f"{k}: {v}" for k, v in headers.items())]))


def offline_listener(answers: dict[str, str | None] | None = None) -> tuple[AmiListener, RecordingBus, list[str]]:
    """An `AmiListener` fed events by hand; with `answers`, its Getvars are answered from them (None: the channel
    is gone) and recorded in the returned list, else they fail (nothing is connected)."""
    bus = RecordingBus()
    listener = AmiListener(AmiSettings(port=1), "x", Resolver(load_catalogs(), bindings={"trunk": "lifecell"}), bus)
    asked: list[str] = []
    if answers is not None:
        async def getvar(channel: str, variable: str) -> str | None:
            asked.append(variable)
            return answers[variable]
        listener._getvar = getvar  # type: ignore[method-assign]
    return listener, bus, asked


def dial_begin(a: str, b: str, b_channel: str, number: str) -> AmiEvent:
    return ami_event("DialBegin", Uniqueid=a, Linkedid=a, Channel=f"PJSIP/caller-{a}", DestUniqueid=b,
                     DestChannel=b_channel, DestLinkedid=a, DialString=f"{number}@trunk")


def b_leg_ends(name: str, a: str, b: str, b_channel: str, cause: str, tech_cause: str) -> AmiEvent:
    """The dialed leg's HangupRequest or Hangup."""
    return ami_event(name, Uniqueid=b, Linkedid=a, Channel=b_channel, Cause=cause, TechCause=tech_cause)


def dial_end(a: str, b: str, b_channel: str, status: str) -> AmiEvent:
    return ami_event("DialEnd", Uniqueid=a, Linkedid=a, Channel=f"PJSIP/caller-{a}", DestUniqueid=b,
                     DestChannel=b_channel, DialStatus=status)


@pytest.mark.asyncio
async def test_close_publishes_a_hung_up_leg_still_waiting_for_its_phrase() -> None:
    listener, bus, _ = offline_listener()
    b_channel = "PJSIP/trunk-00000001"
    for event in (
        dial_begin("a.1", "b.1", b_channel, "503"),
        b_leg_ends("HangupRequest", "a.1", "b.1", b_channel, "34", "503"),
        b_leg_ends("Hangup", "a.1", "b.1", b_channel, "34", "503"),
    ):
        listener.on_event(event)  # the Getvar for the phrase cannot be answered: nothing is connected
    await listener.close()
    assert [(a.code, a.category.value) for a in bus.annotations] == [("503", "capacity")]


@pytest.mark.asyncio
async def test_an_early_provisional_answer_is_asked_again_at_dial_end_so_the_final_phrase_is_published() -> None:
    """The B-leg's HangupRequest comes before the calling channel's Dial has read the leg's final cause: what
    Getvar answers then (no key, or ``SIP 100 Trying``) must not be published; the question is asked again once
    DialEnd shows Dial has read it, whatever the delay between the two."""
    b_channel = "PJSIP/trunk-00000001"
    answers: dict[str, str | None] = {"HANGUPCAUSE_KEYS()": b_channel,
                                      f"HANGUPCAUSE({b_channel},tech)": "SIP 100 Trying"}
    listener, bus, asked = offline_listener(answers)
    listener.on_event(dial_begin("a.1", "b.1", b_channel, "481"))
    listener.on_event(b_leg_ends("HangupRequest", "a.1", "b.1", b_channel, "1", "481"))
    await wait_until(lambda: len(asked) == 2 and not listener._tasks)
    assert bus.annotations == []  # the provisional is not the carrier's answer
    answers[f"HANGUPCAUSE({b_channel},tech)"] = "SIP 481 Call/Transaction Does Not Exist"
    listener.on_event(dial_end("a.1", "b.1", b_channel, "CHANUNAVAIL"))
    listener.on_event(b_leg_ends("Hangup", "a.1", "b.1", b_channel, "1", "481"))
    await wait_until(lambda: len(bus.annotations) == 1 and not listener._tasks)
    (annotation,) = bus.annotations
    assert (annotation.code, annotation.phrase) == ("481", "Call/Transaction Does Not Exist")
    assert asked == ["HANGUPCAUSE_KEYS()", f"HANGUPCAUSE({b_channel},tech)"] * 2
    await listener.close()
    assert len(bus.annotations) == 1


@pytest.mark.asyncio
async def test_an_early_empty_answer_is_dropped_when_the_calling_channel_is_gone_before_the_second_question() -> None:
    b_channel = "PJSIP/trunk-00000002"
    answers: dict[str, str | None] = {"HANGUPCAUSE_KEYS()": ""}
    listener, bus, _ = offline_listener(answers)
    listener.on_event(dial_begin("a.2", "b.2", b_channel, "503"))
    listener.on_event(b_leg_ends("HangupRequest", "a.2", "b.2", b_channel, "34", "503"))
    await wait_until(lambda: not listener._tasks)
    answers["HANGUPCAUSE_KEYS()"] = None  # the A-leg hangs up: every Getvar on it fails from now on
    listener.on_event(dial_end("a.2", "b.2", b_channel, "CONGESTION"))
    listener.on_event(b_leg_ends("Hangup", "a.2", "b.2", b_channel, "34", "503"))
    await wait_until(lambda: len(bus.annotations) == 1 and not listener._tasks)
    (annotation,) = bus.annotations
    # Told by its events alone (an early "" would have read as "no answer from the carrier": a 408).
    assert (annotation.code, annotation.category.value, annotation.phrase) == ("503", "capacity", None)
