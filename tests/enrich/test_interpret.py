"""Reading a Q.850 cause out of a CDR field: whatever a row holds, the answer is a cause or None, never an error."""
from __future__ import annotations

import pytest

from pbx_codes.enrich.interpret import parse_q850


@pytest.mark.parametrize("text, cause", [("17", 17), ("0017", 17), ("²", None), ("1²", None), ("9" * 5000, None),
                                         ("1000", None), ("٣٤", 34)],
                         ids=["17", "0017", "superscript", "digit-superscript", "5000-digits", "1000", "arabic-34"])
def test_parse_q850_reads_digits_and_refuses_digit_lookalikes_and_long_runs(text: str, cause: int | None) -> None:
    assert parse_q850(text) == cause
