"""The hook endpoint refuses a form the hook script would never send, without a stack trace per call."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest

from pbx_codes.model import Annotation, Observation
from pbx_codes.writeback.freeswitch_hook import HookServer


def never_called(obs: Observation) -> Annotation:
    raise AssertionError("the resolver must not see a refused form")


def test_form_with_more_fields_than_the_script_sends_is_a_bad_request():
    body = urlencode([("sip_term_status", "486")] + [(f"x{i}", "1") for i in range(500)]).encode()
    assert HookServer(never_called).answer(body) == (400, b"")


async def _closed_by_server(port: int, send: bytes) -> bytes:
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(send)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 20)  # a guard against a hung test, not a measurement
    finally:
        writer.close()


@pytest.mark.asyncio
async def test_a_connection_that_sends_nothing_or_stalls_in_its_body_is_closed_not_held() -> None:
    server = HookServer(never_called, port=0)
    port = await server.start()
    try:
        assert await _closed_by_server(port, b"") == b""
        stalled = await _closed_by_server(port, b"POST /annotate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                                b"Content-Length: 100\r\n\r\nsip_term_status=4")
        assert stalled.split(b" ")[1] == b"400"
    finally:
        await server.close()
