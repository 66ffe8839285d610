"""Mutated ESL frames: the parser answers with frames or ProtocolError, never any other exception."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbx_codes.protocols.esl import EslParser, ProtocolError
from support.paths import FIXTURES as FIXTURES_ROOT

FIXTURES = FIXTURES_ROOT / "freeswitch"
SAMPLE = (FIXTURES / "409_not_enough_money.bridge.control.esl.txt").read_bytes()[:12000]
JSON_SAMPLE = (FIXTURES / "480_reason_q850_17.direct.json.esl.txt").read_bytes()[:12000]


def _run(data: bytes, chunk: int) -> None:
    parser = EslParser(max_header_bytes=4096, max_body_bytes=65536)
    try:
        for i in range(0, len(data), chunk):
            parser.feed(data[i:i + chunk])
    except ProtocolError:
        pass


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.sampled_from([SAMPLE, JSON_SAMPLE]), st.lists(st.tuples(st.integers(0, 11999), st.binary(max_size=8)),
                                                         max_size=12), st.integers(1, 4096))
def test_mutated_capture_raises_only_protocol_error(sample: bytes, edits: list, chunk: int):
    data = bytearray(sample)
    for pos, repl in edits:
        data[pos:pos + len(repl) or pos + 1] = repl
    _run(bytes(data), chunk)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.integers(1, 64))
def test_random_bytes_raise_only_protocol_error(data: bytes, chunk: int):
    _run(data, chunk)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["text/event-plain", "text/event-json", "text/event-xml", "api/response", "command/reply",
                        "log/data", "text/disconnect-notice", "auth/request"]),
       st.binary(max_size=300))
def test_any_body_under_any_content_type_raises_only_protocol_error(ctype: str, body: bytes):
    _run(b"Content-Length: %d\nContent-Type: %s\n\n" % (len(body), ctype.encode()) + body, 7)
