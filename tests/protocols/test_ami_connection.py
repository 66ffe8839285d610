"""The AMI connection core: its handshake, its states and which answer goes to which action, fed real bytes."""
from __future__ import annotations

import pytest

from pbx_codes.protocols import StateError
from pbx_codes.protocols.ami import (
    AMI_TRANSITIONS,
    AmiConnection,
    AmiParser,
    AmiState,
    Event,
    FilterRefused,
    ProtocolError,
    Reply,
    Response,
    StateChanged,
    build_action,
)
from support.paths import FIXTURES, captures

CAPTURES = captures(FIXTURES / "asterisk", "*.ami.txt")


def answer(action_id: str, status: str = "Success", message: str = "ok") -> bytes:
    return f"Response: {status}\r\nActionID: {action_id}\r\nMessage: {message}\r\n\r\n".encode()


def subscribed(filters: tuple[str, ...] = ()) -> AmiConnection:
    conn = AmiConnection("bench", "s3cret", filters=filters)
    conn.start()
    conn.data_to_send()
    conn.receive_data(b"Asterisk Call Manager/11.0.0\r\n" + answer("pbxc-1", message="Authentication accepted"))
    for n in range(len(filters)):
        conn.receive_data(answer(f"pbxc-{n + 2}"))
    conn.data_to_send()
    assert conn.state is AmiState.SUBSCRIBED
    return conn


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_a_recorded_session_fed_byte_by_byte_logs_in_and_matches_every_answer_to_its_action(path) -> None:
    data = path.read_bytes()
    prefix = data.split(b"ActionID: ", 1)[1].split(b"1\r\n", 1)[0].decode()  # the recording's own ids: <name>-N
    whole = AmiParser().feed(data)
    answers = sum(isinstance(m, Response) for m in whole)
    conn = AmiConnection("bench", "s3cret", id_prefix=prefix)
    conn.start()
    assert conn.data_to_send().startswith(b"Action: Login\r\nActionID: " + prefix.encode() + b"1\r\n")
    ids = []
    out = []
    for i in range(len(data)):
        out += conn.receive_data(data[i:i + 1])
        if conn.state is AmiState.SUBSCRIBED and not ids:
            ids = [conn.send_action("Ping") for _ in range(answers - 1)]  # the recording's actions after Login
    assert conn.banner == "11.0.0"
    assert [m for m in out if isinstance(m, Event)] == [m for m in whole if isinstance(m, Event)]
    replies = [m for m in out if isinstance(m, Reply)]
    assert [r.action_id for r in replies] == ids == [f"{prefix}{n}" for n in range(2, answers + 1)]
    assert all(r.response.action_id == r.action_id for r in replies)
    assert conn.pending == 0 and conn.unmatched == 0


def test_the_login_queues_the_filters_and_the_last_filter_answer_subscribes() -> None:
    conn = AmiConnection("bench", "s3cret", filters=("Event: Hangup", "Event: DialEnd"))
    conn.start()
    assert conn.state is AmiState.LOGGING_IN and conn.awaiting == "Login"
    assert b"Secret: s3cret" in conn.data_to_send()
    out = conn.receive_data(answer("pbxc-1"))
    assert out == [StateChanged(AmiState.AUTHENTICATED, "logged in as 'bench'")]
    sent = conn.data_to_send()
    assert sent == (build_action("Filter", ActionID="pbxc-2", Operation="Add", Filter="Event: Hangup")
                    + build_action("Filter", ActionID="pbxc-3", Operation="Add", Filter="Event: DialEnd"))
    assert conn.receive_data(answer("pbxc-3", "Error", "bad filter")) == [FilterRefused("Event: DialEnd",
                                                                                       "bad filter")]
    assert conn.state is AmiState.AUTHENTICATED and conn.awaiting == "Filter"
    assert conn.receive_data(answer("pbxc-2"))[-1].state is AmiState.SUBSCRIBED


def test_a_refused_login_ends_in_refused_with_the_servers_words() -> None:
    conn = AmiConnection("bench", "wrong")
    conn.start()
    out = conn.receive_data(answer("pbxc-1", "Error", "Authentication failed"))
    assert out == [StateChanged(AmiState.REFUSED, "Authentication failed")]
    with pytest.raises(StateError):
        conn.send_action("Ping")
    assert "wrong" not in repr(conn)


@pytest.mark.parametrize("state, step", [
    (AmiState.CONNECTED, "accepted"), (AmiState.LOGGING_IN, "login"), (AmiState.SUBSCRIBED, "login"),
    (AmiState.REFUSED, "accepted"), (AmiState.CLOSED, "filtered"),
])
def test_steps_outside_the_transition_table_are_refused(state: AmiState, step: str) -> None:
    assert (state, step) not in AMI_TRANSITIONS
    conn = AmiConnection("bench", "s3cret")
    conn.state = state
    with pytest.raises(StateError):
        conn._step(step)
    assert conn.state is state


def test_actions_are_refused_before_the_subscription_and_a_second_login_is_refused() -> None:
    conn = AmiConnection("bench", "s3cret")
    with pytest.raises(StateError):
        conn.send_action("Ping")
    conn.start()
    with pytest.raises(StateError):
        conn.start()
    with pytest.raises(StateError):
        conn.send_action("Ping")


def test_interleaved_answers_go_to_their_own_actions() -> None:
    conn = subscribed()
    first, second, third = (conn.send_action("Getvar", Variable=f"v{n}") for n in range(3))
    event = b"Event: Hangup\r\nUniqueid: 1\r\n\r\n"
    out = conn.receive_data(answer(third, message="3") + event + answer(first, message="1") + answer(second,
                                                                                                    message="2"))
    assert [type(m).__name__ for m in out] == ["Reply", "Event", "Reply", "Reply"]
    assert [(m.action_id, m.response.message) for m in out if isinstance(m, Reply)] == [
        (third, "3"), (first, "1"), (second, "2")]


def test_an_abandoned_actions_late_answer_is_dropped_not_handed_to_another() -> None:
    conn = subscribed()
    gone = conn.send_action("Getvar", Variable="slow")
    kept = conn.send_action("Getvar", Variable="fast")
    conn.abandon(gone)
    out = conn.receive_data(answer(gone, message="late") + answer(kept, message="mine"))
    assert [(r.action_id, r.response.message) for r in out] == [(kept, "mine")]
    assert conn.late == 1 and conn.pending == 0
    assert conn.receive_data(answer("pbxc-999")) == [] and conn.unmatched == 1


def test_closing_returns_the_actions_that_will_never_be_answered() -> None:
    conn = subscribed(("Event: Hangup",))
    waiting = conn.send_action("Ping")
    gone = conn.send_action("Ping")
    conn.abandon(gone)
    assert conn.close() == [waiting]
    assert conn.state is AmiState.CLOSED
    with pytest.raises(StateError):
        conn.receive_data(b"Event: Hangup\r\n\r\n")


def test_outstanding_actions_are_bounded() -> None:
    conn = AmiConnection("bench", "s3cret", max_pending=2)
    conn.start()
    conn.receive_data(answer("pbxc-1"))
    conn.send_action("Ping")
    conn.send_action("Ping")
    with pytest.raises(StateError):
        conn.send_action("Ping")


def test_a_protocol_error_closes_the_connection() -> None:
    conn = subscribed()
    with pytest.raises(ProtocolError):
        conn.receive_data(b"X" * 70000)
    assert conn.state is AmiState.CLOSED


def test_events_before_and_after_the_login_mark_the_session_as_carrying_traffic() -> None:
    conn = AmiConnection("bench", "s3cret", wanted_events=("Hangup",))
    conn.start()
    conn.receive_data(answer("pbxc-1"))
    assert not conn.carried
    assert conn.receive_data(b"Event: Newexten\r\n\r\n") == [] and not conn.carried  # skipped unread
    assert conn.receive_data(b"Event: Hangup\r\n\r\n")[0].name == "Hangup" and conn.carried
