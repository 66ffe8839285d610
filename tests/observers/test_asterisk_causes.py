"""Asterisk's cause descriptions read back to Q.850 numbers, as the write-back and enrichment both need."""
from pbx_codes.observers.asterisk_causes import ASTERISK_CAUSES, asterisk_cause_q850


def test_descriptions_read_back_case_insensitively() -> None:
    assert asterisk_cause_q850("Temporary failure") == 41
    assert asterisk_cause_q850("  user BUSY ") == 17
    assert asterisk_cause_q850("no such text") is None and asterisk_cause_q850(None) is None


def test_every_description_names_a_q850_cause() -> None:
    assert all(0 < cause < 128 for cause in ASTERISK_CAUSES.values())
    assert len(set(ASTERISK_CAUSES.values())) == len(ASTERISK_CAUSES)
