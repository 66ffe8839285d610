"""Random and mutated input never makes the cores raise anything but ProtocolError (or ValueError for builders)."""
from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbx_codes.observers.asterisk import WANTED_EVENTS, AsteriskObserver
from pbx_codes.protocols import ProtocolError, safe_value
from pbx_codes.protocols.agi import AgiParser, build_command, unquote_args
from pbx_codes.protocols.ami import END_COMMAND, AmiParser, Event, Response, build_action
from support.paths import FIXTURES as FIXTURES_ROOT

SAMPLE = (FIXTURES_ROOT / "asterisk" / "money409.ami.txt").read_bytes()[:12000]
AGI_SAMPLE = (b"agi_network: yes\nagi_network_script: annotate?x=1\nagi_arg_1: bleg=PJSIP/t-1\n\n"
              b"200 result=1 (SIP 409 x)\n520-Invalid\nUsage\n520 End of proper usage.\nHANGUP\n511 dead\n")
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated(draw, base: bytes):
    data = bytearray(base)
    for _ in range(draw(st.integers(0, 8))):
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        op = draw(st.sampled_from(["flip", "insert", "delete", "dup"]))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from([b"\r\n", b"\n\n", b"\r\n\r\n", b":", b"\xff", b"\xd0",
                                                  b"--END COMMAND--", b"Response: Follows\r\n", b"Event: Hangup\r\n"]))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 40))]
        elif op == "dup":
            data[pos:pos] = data[pos:pos + draw(st.integers(1, 400))]
    return bytes(data)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    bounds = sorted({0, len(data), *(p % (len(data) + 1) for p in points)})
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def run_ami(chunks: list[bytes]) -> None:
    parser = AmiParser(WANTED_EVENTS, max_frame=4096, max_line=1024, max_output=4096)
    observer = AsteriskObserver()
    try:
        for chunk in chunks:
            for message in parser.feed(chunk):
                if isinstance(message, Event):
                    observer.on_event(message)
                    for fetch in observer.take_fetches():
                        observer.on_phrase(fetch.variable, "SIP 409 x")
                elif isinstance(message, Response):
                    observer.on_response(message)
        observer.flush()
    except ProtocolError:
        pass
    slack = len(END_COMMAND) + 4  # an output frame may hold its end marker and separator beyond max_output
    assert parser.buffered <= 4096 + slack + max((len(c) for c in chunks), default=0)


@FAST
@given(st.binary(max_size=3000), st.lists(st.integers(0, 5000), max_size=20))
def test_random_bytes_into_ami(data: bytes, points: list[int]) -> None:
    run_ami(cut(data, points))


@FAST
@given(mutated(SAMPLE), st.lists(st.integers(0, 20000), max_size=30))
def test_mutated_capture_into_ami_and_observer(data: bytes, points: list[int]) -> None:
    run_ami(cut(data, points))


def run_agi(chunks: list[bytes]) -> None:
    parser = AgiParser(max_line=1024)
    try:
        for chunk in chunks:
            parser.feed(chunk)
        parser.feed_eof()
    except ProtocolError:
        pass


@FAST
@given(st.binary(max_size=3000), st.lists(st.integers(0, 5000), max_size=20))
def test_random_bytes_into_agi(data: bytes, points: list[int]) -> None:
    run_agi(cut(data, points))


@FAST
@given(mutated(AGI_SAMPLE), st.lists(st.integers(0, 500), max_size=20))
def test_mutated_session_into_agi(data: bytes, points: list[int]) -> None:
    run_agi(cut(data, points))


@FAST
@given(st.text(max_size=600))
def test_any_sanitized_text_is_one_agi_argument_and_one_ami_header(text: str) -> None:
    value = safe_value(text)
    assert len(value.encode("utf-8")) <= 255
    line = build_command("SET", "VARIABLE", "CDR(pbx_phrase)", value)
    assert line.count(b"\n") == 1
    assert unquote_args(line.decode().rstrip("\n")) == ["SET", "VARIABLE", "CDR(pbx_phrase)", value]
    frame = build_action("Setvar", Channel="PJSIP/a-1", Variable="CDR(pbx_phrase)", Value=value)
    assert frame.count(b"\r\n") == 5


@FAST
@given(st.text(max_size=200))
def test_builders_refuse_or_frame_any_raw_text(text: str) -> None:
    try:
        line = build_command("SET", "VARIABLE", "x", text)
    except ValueError:
        assert any(c in text for c in "\r\n\x00")
    else:
        assert line.count(b"\n") == 1
    try:
        frame = build_action("Setvar", Value=text)
    except ValueError:
        assert any(c in text for c in "\r\n\x00")
    else:
        assert frame.count(b"\r\n") == 3
