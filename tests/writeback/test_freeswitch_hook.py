"""The hook endpoint: whatever a carrier writes, the pbx_* values stay one line, one CSV field, one JSON string."""
from __future__ import annotations

import asyncio
import csv
import io
import json
from urllib.parse import urlencode

import pytest

from pbx_codes.model import Annotation, Category, Observation, Resolution, Retry, Side
from pbx_codes.observers.freeswitch import iter_events, variables_from_event
from pbx_codes.protocols.esl import build_command
from pbx_codes.writeback.freeswitch_hook import (
    MAX_VALUE_BYTES,
    PBX_VARIABLES,
    HookServer,
    cdr_safe,
    hook_values,
)
from support.hook_client import post_hook

HOSTILE = [
    'Not "enough", money\\',                       # quotes, comma, backslash
    "Line one\nLine two\r\napi shutdown",           # newlines as a JSON value would carry them
    "Not%0Aenough",                                  # stays literal in a form value; decoded on the ESL side
    "Недостатньо коштів на рахунку ✓",              # non-ASCII
    "Ї" * 1024,                                      # 2 KB of two-byte characters
    "${system(rm -rf /)}",                           # variable expansion attempt
    "\x00\x1b[31mred\u2028sep",                       # control characters, Unicode line separator
]


def echo_resolve(obs: Observation) -> Annotation:
    """Worst case: a resolver that hands the carrier's phrase back everywhere it can."""
    resolution = Resolution(catalog="lifecell", code=obs.sip_code, phrase=obs.phrase, matched=obs.phrase,
                            exact=True, match_kind="phrase", category=Category.BILLING, retry=Retry.NO,
                            fault=Side.CALLER, sip=obs.sip_code, q850=obs.q850,
                            texts={"en": obs.phrase or "", "uk": obs.phrase or ""})
    return Annotation(resolution, obs)


def form(phrase: str, **extra: str) -> bytes:
    fields = {"uuid": "b-leg", "call_uuid": "a-leg", "direction": "outbound", "sip_gateway_name": "gw409",
              "sip_invite_failure_status": "409", "sip_invite_failure_phrase": phrase,
              "sip_hangup_disposition": "recv_refuse", "hangup_cause": "NORMAL_UNSPECIFIED"}
    fields.update(extra)
    return urlencode(fields).encode()


def parse_lines(body: bytes) -> dict[str, str]:
    out = {}
    for line in body.decode("utf-8").split("\n"):
        if line:
            name, _, value = line.partition("=")
            out[name] = value
    return out


def assert_template_safe(values: dict[str, str]) -> None:
    for name, value in values.items():
        assert build_command("api", "uuid_setvar", "u", name, value).count(b"\n") == 2
        assert len(value.encode("utf-8")) <= MAX_VALUE_BYTES
        value.encode("utf-8")  # valid UTF-8, never half a character
    row = ",".join(f'"{values[n]}"' for n in PBX_VARIABLES)  # a cdr_csv template line
    parsed = list(csv.reader(io.StringIO(row + "\n"), strict=True))
    assert parsed == [[values[n] for n in PBX_VARIABLES]]
    template = "{" + ",".join(f'"{n}":"{values[n]}"' for n in PBX_VARIABLES) + "}"
    assert json.loads(template) == {n: values[n] for n in PBX_VARIABLES}


@pytest.mark.parametrize("phrase", HOSTILE)
def test_hostile_phrase_cannot_break_esl_csv_or_json(phrase: str):
    status, body = HookServer(echo_resolve).answer(form(phrase))
    assert status == 200
    values = parse_lines(body)
    assert list(values) == list(PBX_VARIABLES)
    assert body.count(b"\n") == len(PBX_VARIABLES)
    assert_template_safe(values)


def test_values_keep_meaning_when_harmless():
    _status, body = HookServer(echo_resolve).answer(form("Not enough money"))
    values = parse_lines(body)
    assert (values["pbx_code"], values["pbx_phrase"], values["pbx_category"], values["pbx_catalog"]) == \
        ("409", "Not enough money", "billing", "lifecell")
    assert values["pbx_hangup_by"] == "carrier" and values["pbx_exact"] == "true"


def test_long_non_ascii_is_cut_on_a_character_boundary():
    value = cdr_safe("Ї" * 1024)
    assert value == "Ї" * (MAX_VALUE_BYTES // 2)


def test_url_encoded_newline_in_plain_event_is_neutralized():
    body = (b"Event-Name: CHANNEL_HANGUP\nUnique-ID: u1\nCall-Direction: outbound\n"
            b"variable_sip_invite_failure_status: 409\nvariable_sip_invite_failure_phrase: Not%0Aenough%22money%0D\n"
            b"variable_sip_hangup_disposition: recv_refuse\nHangup-Cause: NORMAL_UNSPECIFIED\n")
    data = b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(body) + body
    (event,) = iter_events(data)
    v = variables_from_event(event.headers)
    assert v["sip_invite_failure_phrase"] == 'Not\nenough"money\r'
    status, out = HookServer(echo_resolve).answer(urlencode(v).encode())
    assert status == 200
    assert parse_lines(out)["pbx_phrase"] == "Not enough'money"
    assert_template_safe(parse_lines(out))


def test_newline_inside_json_event_value_is_neutralized():
    payload = json.dumps({"Event-Name": "CHANNEL_HANGUP", "Unique-ID": "u2", "Call-Direction": "outbound",
                          "variable_sip_invite_failure_status": "503",
                          "variable_sip_invite_failure_phrase": "Simultaneous\ncalls \"limit\"\r\nreached",
                          "Hangup-Cause": "NORMAL_TEMPORARY_FAILURE"}).encode()
    data = b"Content-Length: %d\nContent-Type: text/event-json\n\n" % len(payload) + payload
    (event,) = iter_events(data)
    _status, out = HookServer(echo_resolve).answer(urlencode(variables_from_event(event.headers)).encode())
    values = parse_lines(out)
    assert values["pbx_phrase"] == "Simultaneous calls 'limit' reached"
    assert_template_safe(values)


def test_leg_that_neither_failed_nor_was_answered_gets_no_variables():
    body = urlencode({"uuid": "u", "hangup_cause": "NORMAL_CLEARING", "direction": "inbound"}).encode()
    assert HookServer(echo_resolve).answer(body) == (204, b"")


def test_answered_leg_gets_who_hung_up_from_the_disposition_the_hook_sees():
    body = urlencode({"uuid": "u", "sip_term_status": "200", "proto_specific_hangup_cause": "sip:200",
                      "sip_hangup_disposition": "recv_bye", "hangup_cause": "NORMAL_CLEARING",
                      "direction": "outbound", "sip_gateway_name": "lifecell", "answer_uepoch": "1796115963000000"
                      }).encode()
    status, body = HookServer(echo_resolve).answer(body)
    assert status == 200
    assert (parse_lines(body)["pbx_code"], parse_lines(body)["pbx_hangup_by"]) == ("200", "carrier")


def test_unknown_form_fields_are_ignored():
    _status, body = HookServer(echo_resolve).answer(form("Busy", pbx_phrase="injected", evil="x"))
    assert parse_lines(body)["pbx_phrase"] == "Busy"


def test_resolver_failure_answers_500_not_an_exception():
    def broken(obs: Observation) -> Annotation:
        raise RuntimeError("boom")
    assert HookServer(broken).answer(form("x"))[0] == 500


def test_endpoint_refuses_non_loopback_address():
    with pytest.raises(ValueError):
        HookServer(echo_resolve, host="0.0.0.0")


@pytest.mark.asyncio
async def test_http_endpoint_round_trip_on_loopback():
    published: list[Annotation] = []
    server = HookServer(echo_resolve, port=0, publish=published.append)
    port = await server.start()
    try:
        status, payload = await post_hook(port, form('Not "enough"\nmoney'))
        assert status == 200
        values = parse_lines(payload)
        assert values["pbx_phrase"] == "Not 'enough' money"
        assert [a.observation.leg_id for a in published] == ["b-leg"]
        assert (await post_hook(port, b"", path="/nowhere"))[0] == 404
    finally:
        await server.close()


@pytest.mark.asyncio
async def test_http_endpoint_refuses_oversized_body():
    server = HookServer(echo_resolve, port=0)
    port = await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /annotate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999\r\n\r\n")
        await writer.drain()
        raw = await reader.read()
        writer.close()
        assert raw.startswith(b"HTTP/1.1 413")
    finally:
        await server.close()


@pytest.mark.asyncio
async def test_http_endpoint_refuses_a_request_that_is_not_http_with_400_and_keeps_serving():
    server = HookServer(echo_resolve, port=0)
    port = await server.start()
    try:
        for garbage in (b"POST /annotate HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",  # HTTP/1.1 without Host
                        b"\x00\x01 not http at all\r\n\r\n"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(garbage)
            await writer.drain()
            raw = await reader.read()
            writer.close()
            assert raw.split(b" ")[1] == b"400"
        status, payload = await post_hook(port, form("Not enough money"))
        assert status == 200 and b"pbx_phrase=Not enough money" in payload
        assert (await post_hook(port, b"", path="/health"))[0] == 404  # /health is GET only
    finally:
        await server.close()


def test_hook_values_cover_every_pbx_variable():
    obs = Observation(sip_code="486", phrase="Busy Here", q850=17, hangup_by=Side.CARRIER, leg_id="u")
    assert list(hook_values(echo_resolve(obs))) == list(PBX_VARIABLES)
