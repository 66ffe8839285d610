"""The AMI core against the real Asterisk 22 captures and hand-made edge cases."""
from __future__ import annotations

from pathlib import Path

import pytest

from pbx_codes.protocols import ProtocolError, safe_value
from pbx_codes.protocols.ami import AmiParser, Banner, Event, Response, build_action, header_needle, header_value
from support.paths import FIXTURES as FIXTURES_ROOT

FIXTURES = FIXTURES_ROOT / "asterisk"
CAPTURES = sorted(FIXTURES.glob("*.ami.txt"))


def feed_all(parser: AmiParser, chunks) -> list:
    out = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    return out


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_capture_parses_the_same_whole_and_byte_by_byte(path: Path) -> None:
    data = path.read_bytes()
    whole = AmiParser().feed(data)
    one_by_one = AmiParser()
    pieces = feed_all(one_by_one, (data[i:i + 1] for i in range(len(data))))
    assert pieces == whole
    assert one_by_one.buffered == 0
    assert isinstance(whole[0], Banner) and whole[0].version == "11.0.0"
    assert sum(isinstance(m, Response) for m in whole) == data.count(b"\r\n\r\nResponse: ") + 1


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_wanted_events_decode_only_those_and_count_the_rest(path: Path) -> None:
    data = path.read_bytes()
    everything = [m for m in AmiParser().feed(data) if isinstance(m, Event)]
    parser = AmiParser({"Hangup", "DialEnd"})
    kept = [m for m in parser.feed(data) if isinstance(m, Event)]
    assert kept == [e for e in everything if e.name in ("Hangup", "DialEnd")]
    assert parser.skipped == len(everything) - len(kept)


def test_event_headers_are_read_lazily_and_exactly() -> None:
    data = (FIXTURES / "money409.ami.txt").read_bytes()
    hangups = [m for m in AmiParser().feed(data) if isinstance(m, Event) and m.name == "Hangup"]
    b_leg = hangups[0]
    assert b_leg.get("Channel") == "PJSIP/trunk-00000009"
    assert b_leg.get("Cause") == "41"
    assert b_leg.get("Cause-txt") == "Temporary failure"
    assert b_leg.get("TechCause") == "409"
    assert b_leg.get("Event") == "Hangup"
    assert b_leg.get("Missing") is None
    assert b_leg.headers["Linkedid"] == "1795422919.16"
    assert b_leg.get("AccountCode") == ""


def test_getvar_response_carries_action_id_variable_and_value() -> None:
    data = (FIXTURES / "money409.ami.txt").read_bytes()
    responses = [m for m in AmiParser().feed(data) if isinstance(m, Response)]
    getvar = next(r for r in responses if r.action_id == "money409-2")
    assert getvar.ok
    assert getvar.get("Variable") == "HANGUPCAUSE(PJSIP/trunk-00000009,tech)"
    assert getvar.get("Value") == "SIP 409 Not enough money"
    error = next(r for r in responses if r.action_id == "money409-4")
    assert not error.ok and error.message == "No such channel"


def test_utf8_character_split_across_reads_survives() -> None:
    frame = "Event: Hangup\r\nCallerIDName: Олена Ковальчук\r\nUniqueid: 1.1\r\n\r\n".encode()
    cut = frame.index("л".encode()) + 1  # inside the two-byte character
    parser = AmiParser()
    events = parser.feed(frame[:cut]) + parser.feed(frame[cut:])
    assert events[0].get("CallerIDName") == "Олена Ковальчук"


def test_invalid_utf8_is_replaced_not_raised() -> None:
    events = AmiParser().feed(b"Event: Hangup\r\nCallerIDName: \xff\xfe bad\r\n\r\n")
    assert events[0].get("CallerIDName") == "\ufffd\ufffd bad"


def test_bare_lf_stream_is_accepted() -> None:
    events = AmiParser().feed(b"Asterisk Call Manager/9.0\nResponse: Success\nActionID: 7\n\n"
                              b"Event: Hangup\nCause: 17\n\n")
    assert events[0] == Banner("9.0")
    assert events[1].action_id == "7"
    assert events[2].get("Cause") == "17"


def test_follows_body_keeps_blank_lines_until_end_command() -> None:
    data = (b"Response: Follows\r\nPrivilege: Command\r\nActionID: c1\r\nline one\r\n\r\nline: three\r\n"
            b"--END COMMAND--\r\n\r\nEvent: Hangup\r\nCause: 16\r\n\r\n")
    parser = AmiParser()
    messages = feed_all(parser, (data[i:i + 3] for i in range(0, len(data), 3)))
    response, event = messages
    assert response.status == "Follows" and response.action_id == "c1"
    assert response.output == ("line one", "", "line: three")
    assert event.get("Cause") == "16"


def test_command_output_headers_are_collected_in_order() -> None:
    (response,) = AmiParser().feed(b"Response: Success\r\nActionID: 2\r\nMessage: Command output follows\r\n"
                                   b"Output: a\r\nOutput: b\r\n\r\n")
    assert response.output == ("a", "b")


def test_line_over_limit_is_a_protocol_error() -> None:
    parser = AmiParser()
    parser.feed(b"Event: Hangup\r\nValue: ")
    with pytest.raises(ProtocolError):
        parser.feed(b"x" * 9000)


def test_frame_over_limit_is_a_protocol_error_and_memory_stays_bounded() -> None:
    parser = AmiParser()
    with pytest.raises(ProtocolError):
        for _ in range(1000):
            parser.feed(b"Key: " + b"v" * 100 + b"\r\n")
    assert parser.buffered < 70 * 1024


def test_complete_frame_with_overlong_line_is_refused() -> None:
    with pytest.raises(ProtocolError):
        AmiParser().feed(b"Event: X\r\nA: " + b"y" * 9000 + b"\r\n\r\n")


def test_build_action_frames_headers_and_repeats_lists() -> None:
    data = build_action("Originate", ActionID="a1", Variable=["A=1", "B=2"], Skip=None)
    assert data == b"Action: Originate\r\nActionID: a1\r\nVariable: A=1\r\nVariable: B=2\r\n\r\n"


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "a\x00b", "x\r\nAction: Logoff"])
def test_build_action_refuses_line_breaks_in_values_and_names(bad: str) -> None:
    with pytest.raises(ValueError):
        build_action("Setvar", Value=bad)
    with pytest.raises(ValueError):
        build_action(bad)
    with pytest.raises(ValueError):
        build_action("Setvar", **{bad: "v"})


def test_sanitized_phrase_goes_through_build_action_as_one_header() -> None:
    hostile = 'Not "enough"\\ money;\r\nAction: Command\r\nCommand: core stop now\x00 ' + "ї" * 900
    value = safe_value(hostile)
    data = build_action("Setvar", Channel="PJSIP/a-1", Variable="CDR(pbx_phrase)", Value=value)
    frame = data.decode()
    assert frame.count("\r\n") == 5 and frame.endswith("\r\n\r\n")
    assert len(value.encode()) <= 255
    assert "Action: Command" not in frame.split("\r\n")


def test_a_refused_value_is_not_quoted_in_the_error_it_may_be_the_secret():
    from pbx_codes.protocols.ami import build_action as build

    with pytest.raises(ValueError) as refused:
        build("Login", Username="pbx-codes", Secret="s3cret-value\r\nAction: Originate")
    assert "s3cret" not in str(refused.value)
    assert "Secret" in str(refused.value)


def test_command_output_with_blank_lines_dripped_byte_by_byte_parses_whole_with_the_resumed_search() -> None:
    """The parser resumes its search where the last read ended (linear work for a peer sending tiny reads); the
    resume point must never skip an END COMMAND marker or a separator that straddles two reads."""
    frame = b"Response: Follows\r\nActionID: x\r\n" + b"out\r\n\r\n" * 200 + b"--END COMMAND--\r\n\r\n"
    parser = AmiParser(max_frame=1 << 20)
    messages = []
    for i in range(len(frame)):
        messages += parser.feed(frame[i:i + 1])
        assert parser._scan <= max(0, parser.buffered)  # never points past what is buffered
    assert len(messages) == 1 and messages[0].output[-1] == "out"
    assert parser._scan == 0 and parser.buffered == 0


@pytest.mark.parametrize(("raw", "cause"), [
    ("Event: Hangup\r\nUniqueid: 1.2\r\nCause: 17", "17"),  # the frame's last line has no line ending
    ("Event: Hangup\r\nCause:17\r\nCause: 18", "17"),  # the first of a repeated key; the space is optional
    ("Cause: 5\r\nX: y", "5"),  # a key that starts the frame
    ("Cause: first\r\nEvent: X\r\nCause: later", "later"),  # ... counts when it occurs nowhere else
    ("Event: X\r\nCause:  padded \r\n", " padded "),  # one space dropped, the rest kept
    ("Event: X\nCause: lf\nY: z", "lf"),
    ("Event: X\r\nCause: mixed\nY: 1\r\n", "mixed"),  # a bare LF ends the line before the next CRLF
    ("Event: X\r\nCause: a\rb\r\r\n", "a\rb\r"),  # only the CR of the line ending goes
    ("Event: X\r\nCause: last\r", "last"),
    ("Event: X\r\nCause:", ""),
    ("Event: X\r\nCauses: no", None),
], ids=range(11))
def test_header_value_and_get_read_the_first_value_by_the_same_rules(raw: str, cause: str | None) -> None:
    assert header_value(raw, header_needle("Cause")) == Event("X", raw).get("Cause") == cause
    assert Event("X", raw).get("Missing", "default") == "default"
