"""The hook endpoint refuses a form the hook script would never send, without a stack trace per call."""
from __future__ import annotations

from urllib.parse import urlencode

from pbx_codes.model import Annotation, Observation
from pbx_codes.writeback.freeswitch_hook import HookServer


def never_called(obs: Observation) -> Annotation:
    raise AssertionError("the resolver must not see a refused form")


def test_form_with_more_fields_than_the_script_sends_is_a_bad_request():
    body = urlencode([("sip_term_status", "486")] + [(f"x{i}", "1") for i in range(500)]).encode()
    assert HookServer(never_called).answer(body) == (400, b"")
