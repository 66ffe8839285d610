"""Reading a Q.850 cause out of a CDR field: whatever a row holds, the answer is a cause or None, never an error."""
from __future__ import annotations

import pytest

from pbx_codes.enrich.interpret import parse_q850


@pytest.mark.parametrize("text, cause", [("17", 17), ("0017", 17), ("²", None), ("1²", None), ("9" * 5000, None),
                                         ("1000", None), ("٣٤", 34)],
                         ids=["17", "0017", "superscript", "digit-superscript", "5000-digits", "1000", "arabic-34"])
def test_parse_q850_reads_digits_and_refuses_digit_lookalikes_and_long_runs(text: str, cause: int | None) -> None:
    assert parse_q850(text) == cause


@pytest.mark.parametrize("text", ["819", "487", "ORIGINATOR_CANCEL", "UNWANTED", "GATEWAY_DOWN", "128"])
def test_freeswitchs_own_causes_above_127_are_never_read_as_q850(text: str) -> None:
    assert parse_q850(text) is None


@pytest.mark.parametrize("text, cause", [("127", 127), ("USER_BUSY", 17), ("DESTINATION_OUT_OF_ORDER", 27)])
def test_q850_causes_by_number_and_by_freeswitchs_name_are_read(text: str, cause: int) -> None:
    assert parse_q850(text) == cause
