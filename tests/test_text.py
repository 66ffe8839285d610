"""One policy for untrusted text: the same hostile phrase through every profile, and what each guarantees."""
from __future__ import annotations

import io
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbx_codes.text import (
    AGI_ARGUMENT,
    AMI_VALUE,
    CSV_CELL,
    ESL_ARGUMENT,
    FS_CHANNEL_VARIABLE,
    LOG_LINE,
    PROFILES,
    TERMINAL,
    SafeLogFormatter,
    clean,
    csv_cell,
)

#: A formula, a forged second log line, an ANSI colour, a backslash, a FreeSWITCH variable, a right-to-left
#: override, a bell, and a non-ASCII letter that must survive.
PHRASE = '=HYPERLINK("x")\r\n2026 INFO forged \x1b[31m\\ ${uuid}\u202eevil\x07 é'

TABLE = [
    (AMI_VALUE, '=HYPERLINK("x") 2026 INFO forged  [31m\\ ${uuid} evil  é'),
    (AGI_ARGUMENT, '=HYPERLINK("x") 2026 INFO forged  [31m\\ ${uuid} evil  é'),
    (ESL_ARGUMENT, '=HYPERLINK("x") 2026 INFO forged [31m\\ ${uuid} evil é'),
    (FS_CHANNEL_VARIABLE, "=HYPERLINK('x') 2026 INFO forged [31m/ $ {uuid} evil é"),
    (CSV_CELL, '\'=HYPERLINK("x") 2026 INFO forged  [31m\\ ${uuid} evil  é'),
    (LOG_LINE, '=HYPERLINK("x")\\r\\n2026 INFO forged \\x1b[31m\\ ${uuid}\\u202eevil\\x07 é'),
    (TERMINAL, '=HYPERLINK("x")??2026 INFO forged ?[31m\\ ${uuid}?evil? é'),
]


def test_the_table_covers_every_profile() -> None:
    assert {p.name for p, _ in TABLE} == set(PROFILES)


@pytest.mark.parametrize("profile, expected", TABLE, ids=[p.name for p, _ in TABLE])
def test_one_phrase_through_every_profile(profile, expected: str) -> None:
    assert clean(PHRASE, profile) == expected


LINE_BREAKERS = ("\r", "\n", "\x00", "\x1b", "\x07", "\u2028", "\u2029", "\u202e", "\u2066", "\x85")


@settings(max_examples=300, deadline=None)
@given(st.text() | st.binary())
def test_no_profile_lets_a_control_or_a_bidi_override_through(value) -> None:
    for profile in PROFILES.values():
        out = clean(value, profile)
        assert not any(ch in out for ch in LINE_BREAKERS), (profile.name, out)
        out.encode("utf-8") if profile.max_bytes else None     # bounded profiles always encode
        if profile.max_bytes:
            assert len(out.encode("utf-8")) <= profile.max_bytes


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_a_csv_cell_never_starts_a_formula(value: str) -> None:
    assert clean(value, CSV_CELL)[:1] not in set("=+-@\t\r")
    assert csv_cell(value)[:1] not in set("=+-@\t\r")


@pytest.mark.parametrize("value", ["=cmd|' /C calc'!A0", "+HYPERLINK(\"http://x\")", "@SUM(1+1)", "-2+3", "\t=1",
                                   "\r=1"])
def test_owasp_formula_starts_get_a_leading_quote(value: str) -> None:
    assert csv_cell(value) == "'" + value


def test_an_ordinary_value_is_left_alone() -> None:
    for profile in PROFILES.values():
        assert clean("Simultaneous calls limit reached", profile) == "Simultaneous calls limit reached"
        assert clean("Недостатньо коштів", profile) == "Недостатньо коштів"


def test_the_existing_sanitizers_are_this_policy() -> None:
    from pbx_codes.cli.console_commands import terminal_safe
    from pbx_codes.protocols import safe_value
    from pbx_codes.protocols.esl import sanitize_arg
    from pbx_codes.writeback.freeswitch_hook import cdr_safe

    assert safe_value(PHRASE) == clean(PHRASE, AMI_VALUE)
    assert safe_value(PHRASE, 16) == clean(PHRASE, AGI_ARGUMENT, 16)
    assert sanitize_arg(PHRASE) == clean(PHRASE, ESL_ARGUMENT)
    assert cdr_safe(PHRASE) == clean(PHRASE, FS_CHANNEL_VARIABLE)
    assert terminal_safe(PHRASE) == clean(PHRASE, TERMINAL)


def _formatted(record_msg: str, *args, exc: BaseException | None = None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeLogFormatter("%(levelname)s %(name)s: %(message)s"))
    log = logging.getLogger("pbx_codes.test_text")
    log.propagate = False
    log.addHandler(handler)
    try:
        if exc is not None:
            try:
                raise exc
            except BaseException:
                log.exception(record_msg, *args)
        else:
            log.warning(record_msg, *args)
    finally:
        log.removeHandler(handler)
        log.propagate = True
    return stream.getvalue()


def test_a_log_record_is_one_line_whatever_its_arguments_hold() -> None:
    out = _formatted("alert %s on %s", "busy\r\nERROR pbx_codes.store: forged", "gw\x1b]0;title\x07\u202e")
    assert out.count("\n") == 1 and "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "\\r\\nERROR pbx_codes.store: forged" in out


def test_a_traceback_quoting_network_text_cannot_start_a_line_of_its_own() -> None:
    out = _formatted("handler failed", exc=ValueError("bad\nWARNING pbx_codes.store: forged"))
    lines = out.splitlines()
    assert lines[0] == "ERROR pbx_codes.test_text: handler failed"
    assert all(line.startswith("  ") for line in lines[1:])
