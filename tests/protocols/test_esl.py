"""The ESL core against FreeSWITCH's own bytes: any way of slicing a capture yields the same frames."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbx_codes.protocols.esl import (
    ApiResponse,
    AuthRequest,
    CommandInjectionError,
    CommandReply,
    DisconnectNotice,
    EslParser,
    Event,
    LogData,
    ProtocolError,
    UnknownFrame,
    build_command,
    parse_stream,
    sanitize_arg,
    truncate_utf8,
)
from support.esl_captures import CYRILLIC_PHRASE, continuation_bytes, with_carrier_phrase
from support.paths import FIXTURES as FIXTURES_ROOT

FIXTURES = FIXTURES_ROOT / "freeswitch"
CAPTURES = sorted(FIXTURES.glob("*.esl.txt"))
#: The JSON captures of failed calls: each event carries the carrier's phrase, as FreeSWITCH writes it (UTF-8).
FAILED_JSON = [p for p in sorted(FIXTURES.glob("*.json.esl.txt")) if b"sip_invite_failure_phrase" in p.read_bytes()]


def frame(headers: str, body: bytes = b"") -> bytes:
    head = headers if not body else f"Content-Length: {len(body)}\n{headers}"
    return head.encode() + b"\n\n" + body


def test_fixture_directory_has_captures():
    assert len(CAPTURES) >= 81
    assert len(FAILED_JSON) >= 24


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_capture_whole_equals_byte_by_byte(path: Path):
    data = path.read_bytes()
    whole = parse_stream(data)
    parser = EslParser()
    pieces: list = []
    for i in range(len(data)):
        pieces.extend(parser.feed(data[i:i + 1]))
    assert pieces == whole
    assert parser.buffered == 0
    assert isinstance(whole[0], AuthRequest)


@pytest.mark.parametrize("path", FAILED_JSON, ids=lambda p: p.name)
def test_capture_split_inside_every_multibyte_char_equals_whole(path: Path):
    """A real JSON capture whose carrier answered in Cyrillic (the phrase replaced, frames re-measured), cut inside
    every multibyte character: the same frames as whole, and the phrase arrives intact."""
    original = path.read_bytes()
    data = with_carrier_phrase(original, CYRILLIC_PHRASE)
    cuts = continuation_bytes(data)
    assert len(cuts) >= len(CYRILLIC_PHRASE.encode()) - len(CYRILLIC_PHRASE), "no multibyte character to cut inside"
    whole = parse_stream(data)
    assert len(whole) == len(parse_stream(original))
    phrases = {e.headers.get("variable_sip_invite_failure_phrase") for e in whole if isinstance(e, Event)}
    assert CYRILLIC_PHRASE in phrases
    parser = EslParser()
    out: list = []
    last = 0
    for cut in cuts + [len(data)]:
        out.extend(parser.feed(data[last:cut]))
        last = cut
    assert out == whole
    assert parser.buffered == 0


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_capture_is_fully_consumed_with_no_unknown_frames(path: Path):
    parser = EslParser()
    frames = parser.feed(path.read_bytes())
    assert parser.buffered == 0
    assert not [f for f in frames if isinstance(f, UnknownFrame)]
    assert isinstance(frames[-1], DisconnectNotice)


def test_non_ascii_split_across_reads_survives():
    body = "Event-Name: CUSTOM\nCaller-Caller-ID-Name: Олена Ковальчук\n".encode()
    data = frame("Content-Type: text/event-plain", body)
    cut = data.index("О".encode()) + 1
    parser = EslParser()
    assert parser.feed(data[:cut]) == []
    (event,) = parser.feed(data[cut:])
    assert event.headers["Caller-Caller-ID-Name"] == "Олена Ковальчук"


def test_plain_values_are_url_decoded():
    body = b"Event-Name: CHANNEL_HANGUP\nvariable_proto_specific_hangup_cause: sip%3A409\nvariable_x: a%0Ab\n"
    (event,) = parse_stream(frame("Content-Type: text/event-plain", body))
    assert event.headers["variable_proto_specific_hangup_cause"] == "sip:409"
    assert event.headers["variable_x"] == "a\nb"


def test_plain_event_with_its_own_body_keeps_it():
    inner = "-ERR NORMAL_UNSPECIFIED\n"
    body = f"Event-Name: BACKGROUND_JOB\nJob-UUID: j1\nContent-Length: {len(inner)}\n\n{inner}".encode()
    (event,) = parse_stream(frame("Content-Type: text/event-plain", body))
    assert event.name == "BACKGROUND_JOB" and event.body == inner and event.headers["Job-UUID"] == "j1"


def test_json_event_body_moves_out_of_headers():
    body = b'{"Event-Name":"BACKGROUND_JOB","Job-UUID":"j2","_body":"+OK done\\n"}'
    (event,) = parse_stream(frame("Content-Type: text/event-json", body))
    assert event.format == "json" and event.body == "+OK done\n" and "_body" not in event.headers


def test_xml_event_is_passed_raw():
    body = b"<event><headers><Event-Name>HEARTBEAT</Event-Name></headers></event>"
    (event,) = parse_stream(frame("Content-Type: text/event-xml", body))
    assert event.format == "xml" and event.name == "HEARTBEAT" and event.body == body.decode()


def test_content_length_counts_bytes_not_characters():
    text = "ї" * 10
    data = frame("Content-Type: api/response", text.encode()) + frame("Content-Type: command/reply\nReply-Text: +OK")
    api, reply = parse_stream(data)
    assert isinstance(api, ApiResponse) and api.body == text
    assert isinstance(reply, CommandReply) and reply.ok


def test_log_data_and_unknown_types_are_typed():
    data = frame("Content-Type: log/data", b"line\n") + frame("Content-Type: text/rude-rejection", b"go away")
    log, other = parse_stream(data)
    assert isinstance(log, LogData) and log.body == "line\n"
    assert isinstance(other, UnknownFrame) and other.content_type == "text/rude-rejection"


def test_header_block_over_limit_is_refused_without_terminator():
    parser = EslParser(max_header_bytes=1024)
    with pytest.raises(ProtocolError, match="header block"):
        parser.feed(b"X-Junk: " + b"a" * 2000)


def test_content_length_over_limit_is_refused():
    with pytest.raises(ProtocolError, match="exceeds"):
        EslParser(max_body_bytes=1000).feed(b"Content-Length: 1001\nContent-Type: api/response\n\n")


def test_default_body_limit_is_eight_mib():
    with pytest.raises(ProtocolError):
        EslParser().feed(b"Content-Length: %d\n\n" % (8 * 1024 * 1024 + 1))


def test_bad_content_length_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        EslParser().feed(b"Content-Length: -5\n\n")


def test_parser_stays_dead_after_an_error():
    parser = EslParser()
    with pytest.raises(ProtocolError):
        parser.feed(b"no colon here\n\n")
    with pytest.raises(ProtocolError):
        parser.feed(b"Content-Type: auth/request\n\n")


def test_invalid_json_event_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        parse_stream(frame("Content-Type: text/event-json", b"{nope"))


def test_build_command_joins_parts():
    assert build_command("api", "uuid_setvar", "u1", "pbx_phrase", "Not enough money") == \
        b"api uuid_setvar u1 pbx_phrase Not enough money\n\n"


def test_build_command_adds_headers():
    assert build_command("bgapi", "status", headers={"Job-UUID": "j"}) == b"bgapi status\nJob-UUID: j\n\n"


@pytest.mark.parametrize("hostile", ["x\nexit", "x\r\nauth y", "\r", "ok\n\napi shutdown"])
def test_build_command_refuses_line_breaks_in_any_argument(hostile: str):
    with pytest.raises(CommandInjectionError):
        build_command("api", "uuid_setvar", "u1", "pbx_phrase", hostile)
    with pytest.raises(CommandInjectionError):
        build_command("bgapi", "status", headers={"Job-UUID": hostile})


def test_sanitize_arg_makes_hostile_text_a_single_argument():
    value = sanitize_arg("Not\r\nenough\tmoney\x00 \u2028api shutdown")
    assert "\n" not in value and "\r" not in value
    assert build_command("api", "uuid_setvar", "u", "v", value).count(b"\n") == 2


def test_truncate_utf8_never_cuts_a_character():
    text = "ґ" * 100
    cut = truncate_utf8(text, 51)
    assert len(cut.encode()) == 50 and cut == "ґ" * 25


# --- wanted_events: only the events a listener reads are decoded ------------------------------------------------

LISTENED = frozenset({"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "BACKGROUND_JOB"})


def plain_event(name: str, **headers: str) -> bytes:
    lines = "".join(f"{k}: {v}\n" for k, v in {"Event-Name": name, **headers}.items())
    body = lines.encode()
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(body) + body


def json_event(name: str, **headers: str) -> bytes:
    import json
    body = json.dumps({"Event-Name": name, **headers}).encode()
    return b"Content-Length: %d\nContent-Type: text/event-json\n\n" % len(body) + body


@pytest.mark.parametrize("make", [plain_event, json_event], ids=["plain", "json"])
def test_wanted_event_is_parsed_whole_and_unwanted_is_skipped_and_counted(make):
    data = (make("CHANNEL_STATE", **{"Unique-ID": "u1"}) + make("CHANNEL_HANGUP", **{
        "Unique-ID": "u1", "variable_sip_invite_failure_phrase": "Not%20enough%20money"})
        + frame("Content-Type: command/reply\nReply-Text: +OK"))
    parser = EslParser(LISTENED)
    event, reply = parser.feed(data)
    assert isinstance(event, Event) and event.name == "CHANNEL_HANGUP" and event.headers["Unique-ID"] == "u1"
    expected = "Not enough money" if make is plain_event else "Not%20enough%20money"  # only plain is URL-encoded
    assert event.headers["variable_sip_invite_failure_phrase"] == expected
    assert isinstance(reply, CommandReply), "replies are never filtered"
    assert parser.skipped == 1 and parser.buffered == 0


@pytest.mark.parametrize("path", [p for p in CAPTURES if ".control." not in p.name][:6], ids=lambda p: p.name)
def test_filtered_capture_split_byte_by_byte_equals_the_wanted_subset(path: Path):
    data = path.read_bytes()
    whole = parse_stream(data)
    events = [f for f in whole if isinstance(f, Event)]
    expected = [f for f in whole if not isinstance(f, Event) or f.name in LISTENED]
    parser = EslParser(LISTENED)
    got: list = []
    for i in range(len(data)):
        got.extend(parser.feed(data[i:i + 1]))
    assert got == expected
    assert parser.skipped == len(events) - len([e for e in events if e.name in LISTENED]) > 0
    assert parser.buffered == 0


def test_unwanted_event_body_is_not_decoded_at_all():
    broken = b'{"Event-Name":"CHANNEL_STATE", this is not JSON'
    data = b"Content-Length: %d\nContent-Type: text/event-json\n\n" % len(broken) + broken
    parser = EslParser(LISTENED)
    assert parser.feed(data + json_event("BACKGROUND_JOB", **{"Job-UUID": "j"}))[0].name == "BACKGROUND_JOB"
    assert parser.skipped == 1
    with pytest.raises(ProtocolError):
        EslParser().feed(data)  # unfiltered, the same bytes are decoded and refused


@pytest.mark.parametrize("body", [b'{"Event-Name" : "CHANNEL_STATE"}', b'{"Event-Name":"CHANNEL\\u005fSTATE"}'])
def test_name_not_written_plainly_is_decided_after_decoding(body: bytes):
    data = b"Content-Length: %d\nContent-Type: text/event-json\n\n" % len(body) + body
    parser = EslParser({"CHANNEL_STATE"})
    (event,) = parser.feed(data)
    assert event.name == "CHANNEL_STATE" and parser.skipped == 0
    other = EslParser(LISTENED)
    assert other.feed(data) == [] and other.skipped == 1


def test_encoded_plain_event_name_is_decided_after_decoding():
    parser = EslParser({"CUSTOM X"})
    (event,) = parser.feed(plain_event("CUSTOM%20X"))
    assert event.name == "CUSTOM X"


def test_event_name_inside_a_plain_event_body_does_not_count():
    inner = "Event-Name: CHANNEL_HANGUP\n"
    body = f"Event-Name: BACKGROUND_JOB\nContent-Length: {len(inner)}\n\n{inner}".encode()
    data = b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(body) + body
    parser = EslParser({"CHANNEL_HANGUP"})
    assert parser.feed(data) == [] and parser.skipped == 1


def test_wanted_none_returns_exactly_what_was_sent():
    data = plain_event("CHANNEL_STATE") + json_event("HEARTBEAT")
    parser = EslParser(None)
    assert [e.name for e in parser.feed(data)] == ["CHANNEL_STATE", "HEARTBEAT"] and parser.skipped == 0


# --- the byte-level decoding of plain events is the text-level one, faster ---------------------------------------

_ASCII_PIECES = st.sampled_from(["%", "%2", "%20", "%3A", "%3a", "%0A", "%0d", "%25", "%41", "%EE%80%80", "%D0%9E",
                                 "%FF", "=", "==", "=3D", ": ", ":", "\n", "\n\n", " ", "a", "Name", "\\", "\r",
                                 "%%", "%\n", "%\r\n"])


@given(st.lists(_ASCII_PIECES, max_size=40))
@settings(max_examples=400, deadline=None)
def test_byte_level_plain_decoding_equals_the_per_text_decoding(pieces: list[str]):
    from pbx_codes.protocols.esl import _parse_block, _parse_encoded_block, _parse_encoded_bytes
    text = "Event-Name: X\n" + "".join(pieces)
    try:
        expected = _parse_encoded_block(text)
    except ProtocolError:
        with pytest.raises(ProtocolError):
            _parse_encoded_bytes(text.encode())
        return
    assert _parse_encoded_bytes(text.encode()) == expected
    assert "%" in text or expected == _parse_block(text, url_decoded=False)


def test_a_refused_argument_is_not_quoted_in_the_error_it_may_be_the_password():
    from pbx_codes.protocols.esl import CommandInjectionError
    from pbx_codes.protocols.esl import build_command as build

    with pytest.raises(CommandInjectionError) as refused:
        build("auth", "s3cret-value\n")
    assert "s3cret" not in str(refused.value)
    with pytest.raises(CommandInjectionError) as refused:
        build("bgapi", "status", headers={"Job-UUID": "s3cret-value\n"})
    assert "s3cret" not in str(refused.value)
