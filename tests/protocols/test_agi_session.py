"""The FastAGI session core: request, one command at a time, its reply, and the session's byte budget."""
from __future__ import annotations

import pytest

from pbx_codes.protocols import StateError
from pbx_codes.protocols.agi import (
    AGI_TRANSITIONS,
    AgiHangup,
    AgiReply,
    AgiRequest,
    AgiSession,
    AgiState,
    IncompleteRequest,
    ProtocolError,
    SessionTooLarge,
)

REQUEST = b"agi_network: yes\nagi_network_script: annotate?lang=en\nagi_channel: PJSIP/trunk-1\n\n"


def ready() -> AgiSession:
    session = AgiSession()
    assert isinstance(session.receive_data(REQUEST)[0], AgiRequest)
    assert session.state is AgiState.READY
    return session


def test_the_request_fed_byte_by_byte_makes_the_session_ready() -> None:
    session = AgiSession()
    out = []
    for i in range(len(REQUEST)):
        out += session.receive_data(REQUEST[i:i + 1])
    assert [m.script for m in out] == ["annotate"] and session.request is out[0]
    assert session.received == len(REQUEST)


def test_a_command_before_the_request_or_while_another_is_in_flight_is_refused() -> None:
    with pytest.raises(StateError):
        AgiSession().send_command("GET", "VARIABLE", "x")
    session = ready()
    assert session.send_command("GET", "VARIABLE", "x") == b"GET VARIABLE x\n"
    with pytest.raises(StateError):  # res_agi reads one command at a time: never pipelined
        session.send_command("SET", "VARIABLE", "y", "1")
    assert session.receive_data(b"200 result=1 (v)\n") == [AgiReply(200, 1, "v", "result=1 (v)", ("200 result=1 (v)",))]
    assert session.state is AgiState.READY
    session.send_command("SET", "VARIABLE", "y", "1")


@pytest.mark.parametrize("state, step", [
    (AgiState.REQUEST, "command"), (AgiState.READY, "reply"), (AgiState.COMMAND, "command"),
    (AgiState.CLOSED, "command"), (AgiState.READY, "request"),
])
def test_steps_outside_the_transition_table_are_refused(state: AgiState, step: str) -> None:
    assert (state, step) not in AGI_TRANSITIONS
    session = AgiSession()
    session.state = state
    with pytest.raises(StateError):
        session._step(step)


def test_a_reply_with_no_command_in_flight_is_dropped_and_counted() -> None:
    session = ready()
    assert session.receive_data(b"200 result=1\n") == [] and session.unsolicited == 1


def test_an_abandoned_commands_reply_is_dropped_and_the_next_command_gets_its_own() -> None:
    session = ready()
    session.send_command("GET", "VARIABLE", "slow")
    session.abandon()
    with pytest.raises(StateError):
        session.send_command("GET", "VARIABLE", "next")  # the line is still busy until the reply comes
    assert session.receive_data(b"200 result=1 (late)\n") == []
    session.send_command("GET", "VARIABLE", "next")
    assert session.receive_data(b"200 result=1 (mine)\n")[0].value == "mine"


def test_a_hangup_notice_is_reported_between_replies() -> None:
    session = ready()
    session.send_command("GET", "VARIABLE", "x")
    out = session.receive_data(b"HANGUP\n200 result=0\n")
    assert [type(m) for m in out] == [AgiHangup, AgiReply] and session.hangup


def test_the_session_byte_budget_is_enforced_and_lets_go_of_the_buffer() -> None:
    session = AgiSession(max_session_bytes=100)
    session.receive_data(b"agi_channel: " + b"x" * 80)
    with pytest.raises(SessionTooLarge):
        session.receive_data(b"x" * 20)
    assert session.state is AgiState.CLOSED and session.parser.buffered == 0
    assert isinstance(SessionTooLarge("x"), ProtocolError)


def test_eof_in_the_middle_of_the_request_is_an_incomplete_request() -> None:
    session = AgiSession()
    session.receive_data(b"agi_channel: x\n")
    with pytest.raises(IncompleteRequest):
        session.receive_eof()
    assert session.state is AgiState.CLOSED
