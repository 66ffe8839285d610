"""Inputs found by bench/fuzz_protocols.py that once escaped the documented ProtocolError or the buffer bound."""
from __future__ import annotations

import pytest

from pbx_codes.protocols import ProtocolError
from pbx_codes.protocols.agi import AgiParser, parse_reply_line
from pbx_codes.protocols.ami import MAX_COMMAND_OUTPUT, AmiParser

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
REQUEST = b"agi_network: yes\nagi_network_script: annotate\nagi_channel: PJSIP/caller-00000006\n\n"


@pytest.mark.parametrize("head", [b"Response: Follows\r\nActionID: 1\r\n",
                                  b"Response: Follows\r\nActionID: 1\r\n--END COMMAND--"],
                         ids=["no-end-marker", "no-blank-line-after-the-marker"])
def test_ami_command_output_that_never_ends_is_refused_not_buffered(head: bytes) -> None:
    parser = AmiParser()
    parser.feed(BANNER + head)
    with pytest.raises(ProtocolError):
        for _ in range(40):  # 2.5 MiB in socket-sized reads, no CRLFCRLF anywhere
            parser.feed(b"x" * 65536)
            assert parser.buffered <= MAX_COMMAND_OUTPUT + 64


def test_ami_complete_command_output_over_the_limit_is_refused() -> None:
    frame = (b"Response: Follows\r\nActionID: 2\r\n" + b"line\r\n" * (MAX_COMMAND_OUTPUT // 6 + 1)
             + b"--END COMMAND--\r\n\r\n")
    with pytest.raises(ProtocolError):
        AmiParser().feed(BANNER + frame)


def test_ami_command_output_within_the_limit_still_parses() -> None:
    frame = b"Response: Follows\r\nActionID: 3\r\n" + b"line\r\n" * 1000 + b"--END COMMAND--\r\n\r\n"
    (_, response) = AmiParser().feed(BANNER + frame)
    assert response.status == "Follows" and len(response.output) == 1000


@pytest.mark.parametrize("line", ["\u00b2\u00b3\u00b9 result=1", "2\u00b20 result=1", "\uff12\uff10\uff10 result=1",
                                  "200 result=" + "9" * 5000], ids=["superscript", "mixed", "fullwidth", "5000-digits"])
def test_agi_reply_with_odd_numbers_is_a_protocol_error(line: str) -> None:
    with pytest.raises(ProtocolError):
        parse_reply_line(line)
    parser = AgiParser()
    parser.feed(REQUEST)
    with pytest.raises(ProtocolError):
        parser.feed(line.encode() + b"\n")


def test_agi_ordinary_results_still_parse() -> None:
    reply = parse_reply_line("200 result=-1 endpos=0")
    assert (reply.code, reply.result) == (200, -1)
    reply = parse_reply_line("200 result=1 (SIP 503 Simultaneous calls limit reached)")
    assert (reply.result, reply.value) == (1, "SIP 503 Simultaneous calls limit reached")


def test_superscript_digits_from_the_network_are_not_numbers() -> None:
    from pbx_codes.protocols import small_int

    assert small_int("²") is None and small_int("1" * 5000) is None and small_int(" 17 ") == 17


def test_esl_content_length_with_thousands_of_digits_is_a_protocol_error() -> None:
    import pytest as _pytest

    from pbx_codes.protocols import esl

    for head in (b"Content-Length: " + b"9" * 5000 + b"\nContent-Type: text/event-plain\n\n",
                 b"Content-Type: api/response\nContent-Length: " + b"1" * 5000 + b"\n\n"):
        with _pytest.raises(esl.ProtocolError):
            esl.EslParser().feed(head)
