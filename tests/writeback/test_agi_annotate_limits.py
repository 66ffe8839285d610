"""The FastAGI write-back's size bound: every value it may write fits one res_agi command line."""
from __future__ import annotations

import pytest

from pbx_codes.protocols import safe_value
from pbx_codes.protocols.agi import MAX_COMMAND_BYTES, build_command
from pbx_codes.writeback.agi_annotate import CDR_FIELDS, MAX_WRITEBACK_BYTES, WritebackSettings


def test_a_max_bytes_whose_escaped_values_would_not_fit_one_command_is_refused() -> None:
    with pytest.raises(ValueError):
        WritebackSettings("en", 4096)


@pytest.mark.parametrize("field", CDR_FIELDS)
@pytest.mark.parametrize("worst", ['"', "\\"])
def test_the_largest_allowed_value_still_fits_one_command(field: str, worst: str) -> None:
    value = safe_value(worst * 5000, WritebackSettings("en", MAX_WRITEBACK_BYTES).max_bytes)
    assert len(build_command("SET", "VARIABLE", f"CDR({field})", value)) <= MAX_COMMAND_BYTES
