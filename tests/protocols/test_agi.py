"""The FastAGI core: request parsing, every reply shape, EOF handling, and command quoting."""
from __future__ import annotations

import pytest

from pbx_codes.protocols import ProtocolError
from pbx_codes.protocols.agi import (
    AgiHangup,
    AgiParser,
    AgiReply,
    AgiRequest,
    IncompleteRequest,
    build_command,
    parse_reply_line,
    unquote_args,
)

REQUEST = (b"agi_network: yes\n"
           b"agi_network_script: annotate?catalog=lifecell&lang=uk\n"
           b"agi_request: agi://127.0.0.1/annotate?catalog=lifecell&lang=uk\n"
           b"agi_channel: PJSIP/caller-00000008\n"
           b"agi_uniqueid: 1795422919.16\n"
           b"agi_callerid: \xd0\x9e\xd0\xbb\xd0\xb5\xd0\xbd\xd0\xb0\n"
           b"agi_arg_1: bleg=PJSIP/trunk-00000009\n"
           b"agi_arg_2: second arg\n"
           b"\n")


def test_request_is_parsed_into_script_query_and_args() -> None:
    (request,) = AgiParser().feed(REQUEST)
    assert isinstance(request, AgiRequest)
    assert request.script == "annotate"
    assert request.query == {"catalog": "lifecell", "lang": "uk"}
    assert request.args == ("bleg=PJSIP/trunk-00000009", "second arg")
    assert request.param("bleg") == "PJSIP/trunk-00000009"
    assert request.param("catalog") == "lifecell"
    assert request.channel == "PJSIP/caller-00000008"
    assert request.env["agi_callerid"] == "Олена"


def test_request_fed_byte_by_byte_is_the_same() -> None:
    parser = AgiParser()
    out = []
    for i in range(len(REQUEST)):
        out += parser.feed(REQUEST[i:i + 1])
    assert out == AgiParser().feed(REQUEST)


def test_crlf_request_is_accepted() -> None:
    (request,) = AgiParser().feed(REQUEST.replace(b"\n", b"\r\n"))
    assert request.script == "annotate" and request.args[1] == "second arg"


@pytest.mark.parametrize("line, expected", [
    ("200 result=1 (SIP 409 Not enough money)", AgiReply(200, 1, "SIP 409 Not enough money")),
    ("200 result=1 (a (nested) value)", AgiReply(200, 1, "a (nested) value")),
    ("200 result=0", AgiReply(200, 0, None)),
    ("200 result=1 () endpos=0", AgiReply(200, 1, "")),
    ("200 result=-1", AgiReply(200, -1, None)),
    ("510 Invalid or unknown command", AgiReply(510, None, None)),
    ("511 Command Not Permitted on a dead channel or intercept routine", AgiReply(511, None, None)),
])
def test_reply_lines(line: str, expected: AgiReply) -> None:
    reply = parse_reply_line(line)
    assert (reply.code, reply.result, reply.value) == (expected.code, expected.result, expected.value)


def test_dead_channel_reply_is_flagged() -> None:
    assert parse_reply_line("511 Command Not Permitted on a dead channel or intercept routine").dead_channel


def test_usage_reply_spans_lines_until_end_of_proper_usage() -> None:
    parser = AgiParser()
    parser.feed(REQUEST)
    out = parser.feed(b"520-Invalid command syntax.  Proper usage follows:\nUsage: GET FULL VARIABLE\n")
    assert out == []
    (reply,) = parser.feed(b"520 End of proper usage.\n200 result=1\n")[:1]
    assert reply.code == 520 and "Usage: GET FULL VARIABLE" in reply.text


def test_hangup_line_is_a_notice_not_a_reply() -> None:
    parser = AgiParser()
    parser.feed(REQUEST)
    out = parser.feed(b"HANGUP\n200 result=1 (x)\n")
    assert isinstance(out[0], AgiHangup) and out[1].value == "x"


def test_close_before_blank_line_is_a_clean_eof_error() -> None:
    parser = AgiParser()
    parser.feed(REQUEST[:40])
    with pytest.raises(IncompleteRequest):
        parser.feed_eof()


def test_close_with_nothing_sent_is_an_eof_error() -> None:
    with pytest.raises(IncompleteRequest):
        AgiParser().feed_eof()


def test_close_between_replies_is_fine() -> None:
    parser = AgiParser()
    parser.feed(REQUEST + b"200 result=1\n")
    parser.feed_eof()


@pytest.mark.parametrize("garbage", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"hello\n", b"\x16\x03\x01\x02\x00\n"])
def test_garbage_request_is_a_protocol_error(garbage: bytes) -> None:
    with pytest.raises(ProtocolError):
        AgiParser().feed(garbage)


def test_endless_line_is_refused_without_growing() -> None:
    parser = AgiParser()
    with pytest.raises(ProtocolError):
        for _ in range(100):
            parser.feed(b"agi_x: " + b"y" * 1000)


def test_build_command_quotes_only_what_needs_it() -> None:
    assert build_command("GET", "FULL", "VARIABLE", "${HANGUPCAUSE(PJSIP/trunk-00000009,tech)}") == \
        b"GET FULL VARIABLE ${HANGUPCAUSE(PJSIP/trunk-00000009,tech)}\n"
    assert build_command("SET", "VARIABLE", "CDR(pbx_phrase)", 'say "hi" \\ there') == \
        b'SET VARIABLE CDR(pbx_phrase) "say \\"hi\\" \\\\ there"\n'
    assert build_command("SET", "VARIABLE", "x", "") == b'SET VARIABLE x ""\n'


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\x00b"])
def test_build_command_refuses_line_breaks(bad: str) -> None:
    with pytest.raises(ValueError):
        build_command("SET", "VARIABLE", "x", bad)


@pytest.mark.parametrize("value", ['plain', 'two words', 'q"uo"te', 'back\\slash', '\\"', 'end\\', '"', ';|&$(){}',
                                   'Олена "ї" \\ 123', ''])
def test_quoted_value_reads_back_as_one_argument(value: str) -> None:
    line = build_command("SET", "VARIABLE", "CDR(pbx_phrase)", value).decode().rstrip("\n")
    assert unquote_args(line) == ["SET", "VARIABLE", "CDR(pbx_phrase)", value]


def test_build_command_refuses_a_line_res_agi_would_cut_into_a_second_command() -> None:
    # res_agi reads 2047 bytes of a line; the rest would run as its own command ("EXEC System ...").
    phrase = "x" * 2000 + " EXEC System touch"
    with pytest.raises(ValueError):
        build_command("SET", "VARIABLE", "CDR(pbx_phrase)", phrase)


def test_build_command_accepts_a_line_of_exactly_res_agis_buffer() -> None:
    from pbx_codes.protocols.agi import MAX_COMMAND_BYTES

    prefix = b"SET VARIABLE x "
    line = build_command("SET", "VARIABLE", "x", "y" * (MAX_COMMAND_BYTES - len(prefix) - 1))
    assert len(line) == MAX_COMMAND_BYTES
