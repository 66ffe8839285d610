"""The ESL connection core: auth -> subscribe, the reply FIFO and bgapi jobs, fed FreeSWITCH's recorded bytes."""
from __future__ import annotations

import pytest

from pbx_codes.protocols import StateError
from pbx_codes.protocols.esl import (
    ESL_TRANSITIONS,
    ApiResponse,
    CommandReply,
    DisconnectNotice,
    EslConnection,
    EslState,
    Event,
    JobDone,
    ProtocolError,
    StateChanged,
    build_command,
    parse_stream,
)
from support.paths import FIXTURES, captures

CAPTURES = [p for p in captures(FIXTURES / "freeswitch", "*.esl.txt") if ".control." not in p.name]


def reply(text: str) -> bytes:
    return f"Content-Type: command/reply\nReply-Text: {text}\n\n".encode()


def api(body: str) -> bytes:
    data = body.encode()
    return f"Content-Type: api/response\nContent-Length: {len(data)}\n\n".encode() + data


def subscribed() -> EslConnection:
    conn = EslConnection("ClueCon", events=("CHANNEL_HANGUP",))
    conn.receive_data(b"Content-Type: auth/request\n\n" + reply("+OK accepted") + reply("+OK event listener"))
    conn.data_to_send()
    assert conn.state is EslState.SUBSCRIBED
    return conn


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_a_recorded_session_fed_byte_by_byte_authenticates_subscribes_and_yields_every_event(path) -> None:
    data = path.read_bytes()
    conn = EslConnection("ClueCon", events=("ALL",))
    out: list = []
    sent = b""
    for i in range(len(data)):
        out += conn.receive_data(data[i:i + 1])
        sent += conn.data_to_send()
    assert sent == build_command("auth", "ClueCon") + build_command("event", "json", "ALL")
    assert [m.state for m in out if isinstance(m, StateChanged)] == [EslState.SUBSCRIBING, EslState.SUBSCRIBED]
    expected = [f for f in parse_stream(data) if isinstance(f, Event)]
    assert [m for m in out if isinstance(m, Event)] == expected and expected
    assert conn.carried


def test_a_refused_password_ends_in_refused_with_freeswitchs_words() -> None:
    conn = EslConnection("wrong")
    out = conn.receive_data(b"Content-Type: auth/request\n\n" + reply("-ERR invalid"))
    assert out == [StateChanged(EslState.REFUSED, "-ERR invalid")]
    assert conn.data_to_send() == build_command("auth", "wrong")
    with pytest.raises(StateError):
        conn.command("api", "status")
    assert "wrong" not in repr(conn)


@pytest.mark.parametrize("first, message", [
    (reply("+OK accepted"), "expected auth/request, got CommandReply"),
    (b"Content-Type: auth/request\n\n" + api("x"), "expected a reply to auth, got ApiResponse"),
    (b"Content-Type: auth/request\n\n" + reply("+OK") + reply("-ERR no"), "event subscription refused"),
])
def test_frames_out_of_the_handshakes_order_are_protocol_errors(first: bytes, message: str) -> None:
    conn = EslConnection("ClueCon")
    with pytest.raises(ProtocolError, match=message):
        conn.receive_data(first)
    assert conn.state is EslState.CLOSED


@pytest.mark.parametrize("state, step", [
    (EslState.CONNECTED, "accepted"), (EslState.AUTHENTICATING, "subscribed"), (EslState.SUBSCRIBED, "auth_request"),
    (EslState.REFUSED, "accepted"), (EslState.CLOSED, "subscribed"),
])
def test_steps_outside_the_transition_table_are_refused(state: EslState, step: str) -> None:
    assert (state, step) not in ESL_TRANSITIONS
    conn = EslConnection("ClueCon")
    conn.state = state
    with pytest.raises(StateError):
        conn._step(step)
    assert conn.state is state


def test_what_the_handshake_awaits_is_named() -> None:
    conn = EslConnection("ClueCon")
    assert conn.awaiting == "auth/request"
    conn.receive_data(b"Content-Type: auth/request\n\n")
    assert conn.awaiting == "reply to auth"
    conn.receive_data(reply("+OK accepted"))
    assert conn.awaiting == "reply to the event subscription"


def test_commands_are_refused_before_the_subscription() -> None:
    with pytest.raises(StateError):
        EslConnection("ClueCon").command("api", "status")


def test_replies_come_back_in_order_and_an_abandoned_command_keeps_its_slot() -> None:
    conn = subscribed()
    first = conn.command("api", "first")
    second = conn.command("api", "second")
    third = conn.command("filter", "Unique-ID", "x")
    conn.abandon(first)
    out = conn.receive_data(api("answer to first\n") + api("answer to second\n") + reply("+OK filter added"))
    assert [(r.token, type(r.frame)) for r in out] == [(second, ApiResponse), (third, CommandReply)]
    assert out[0].frame.body == "answer to second\n"
    assert conn.late == 1 and conn.pending == 0


def test_a_bgapi_job_is_matched_by_its_uuid_across_interleaved_replies_and_events() -> None:
    conn = subscribed()
    token = conn.bgapi("job-1", "originate", "sofia/gateway/gw/409", "&park")
    assert b"Job-UUID: job-1" in conn.data_to_send()
    other = conn.command("api", "status")
    job_event = (b'{"Event-Name":"BACKGROUND_JOB","Job-UUID":"job-1","_body":"+OK uuid\\n"}')
    stray = b'{"Event-Name":"BACKGROUND_JOB","Job-UUID":"someone-else","_body":"-ERR"}'
    frames = (reply("+OK Job-UUID: job-1")
              + b"Content-Type: text/event-json\nContent-Length: %d\n\n" % len(stray) + stray
              + b"Content-Type: text/event-json\nContent-Length: %d\n\n" % len(job_event) + job_event
              + api("UP 0 years\n"))
    out = conn.receive_data(frames)
    assert [type(m).__name__ for m in out] == ["Reply", "Event", "JobDone", "Event", "Reply"]
    assert out[0].token == token and out[4].token == other
    assert out[2] == JobDone("job-1", "+OK uuid\n")


def test_closing_returns_what_will_never_be_answered() -> None:
    conn = subscribed()
    waiting = conn.command("api", "a")
    gone = conn.command("api", "b")
    conn.abandon(gone)
    conn.bgapi("job-9", "status")
    assert conn.close() == ([waiting, 3], ["job-9"])


def test_a_disconnect_notice_closes_and_nothing_after_it_is_read() -> None:
    conn = subscribed()
    out = conn.receive_data(b"Content-Type: text/disconnect-notice\nContent-Length: 3\n\nbye" + api("late"))
    assert [type(m) for m in out] == [DisconnectNotice]
    assert conn.state is EslState.CLOSED and not conn.carried


def test_outstanding_commands_are_bounded() -> None:
    conn = subscribed()
    conn.max_pending = 1
    conn.command("api", "a")
    with pytest.raises(StateError):
        conn.command("api", "b")
