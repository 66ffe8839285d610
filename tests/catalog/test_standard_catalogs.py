"""The two standard catalogs (sip, q850) hold every standard code and the mappings they claim.

These tests read the TOML directly, so they guard the data itself, independent of the loader.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

DATA_DIR = Path(__file__).resolve().parents[2] / "pbx_codes" / "catalog" / "data"

# The IANA "Response Codes" registry of the SIP parameters: 50 codes from RFC 3261 section 21
# and 25 registered by later RFCs.
IANA_SIP_CODES: tuple[str, ...] = (
    "100", "180", "181", "182", "183", "199",
    "200", "202", "204",
    "300", "301", "302", "305", "380",
    "400", "401", "402", "403", "404", "405", "406", "407", "408", "410", "412", "413", "414",
    "415", "416", "417", "420", "421", "422", "423", "424", "425", "428", "429", "430", "433",
    "436", "437", "438", "439", "440", "469", "470", "480", "481", "482", "483", "484", "485",
    "486", "487", "488", "489", "491", "493", "494",
    "500", "501", "502", "503", "504", "505", "513", "555", "580",
    "600", "603", "604", "606", "607", "608",
)

CATEGORIES = {
    "ok", "busy", "no_answer", "declined", "unavailable", "invalid_number", "cancelled", "auth",
    "forbidden", "billing", "capacity", "media", "network", "config", "request_error", "not_found",
    "pending",
}
RETRIES = {"no", "later", "failover"}
FAULTS = {"caller", "callee", "carrier", "local"}
ENTRY_KEYS = {
    "code", "phrase", "match", "message", "methods", "category", "retry", "fault", "sip", "q850",
    "q850_asterisk", "q850_freeswitch", "name", "deprecated", "original", "note", "text",
}
TOP_KEYS = {"id", "title", "source", "original_lang", "code_space", "class_scheme", "fallback",
            "classes", "entry"}


def load(catalog_id: str) -> dict[str, Any]:
    with (DATA_DIR / f"{catalog_id}.toml").open("rb") as fh:
        return tomllib.load(fh)


def by_code(catalog: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["code"]: entry for entry in catalog["entry"]}


@pytest.fixture(scope="module")
def sip() -> dict[str, dict[str, Any]]:
    return by_code(load("sip"))


@pytest.fixture(scope="module")
def q850_catalog() -> dict[str, Any]:
    return load("q850")


@pytest.fixture(scope="module")
def q850(q850_catalog: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return by_code(q850_catalog)


def resolve_q850(catalog: dict[str, Any], cause: int) -> dict[str, Any] | None:
    """An entry for the cause itself, else the entry its [classes] range points to."""
    entries = by_code(catalog)
    if str(cause) in entries:
        return entries[str(cause)]
    for span, target in catalog.get("classes", {}).items():
        lo, hi = (int(part) for part in span.split("-"))
        if lo <= cause <= hi:
            return entries.get(target)
    return None


def test_catalog_headers_name_the_standard_code_spaces() -> None:
    sip_catalog, q850_catalog = load("sip"), load("q850")
    assert (sip_catalog["id"], sip_catalog["code_space"], sip_catalog["class_scheme"]) == ("sip", "sip", "digits")
    assert (q850_catalog["id"], q850_catalog["code_space"], q850_catalog["class_scheme"]) == ("q850", "q850", "range")
    assert sip_catalog["original_lang"] == q850_catalog["original_lang"] == "en"
    assert "fallback" not in sip_catalog


@pytest.mark.parametrize("code", IANA_SIP_CODES)
def test_every_iana_registered_sip_code_has_an_entry(sip: dict[str, dict[str, Any]], code: str) -> None:
    assert code in sip, f"IANA-registered SIP code {code} is missing"


def test_iana_list_in_this_test_has_all_75_registered_codes() -> None:
    assert len(set(IANA_SIP_CODES)) == 75


def test_rfc2543_codes_409_and_411_are_present_and_deprecated(sip: dict[str, dict[str, Any]]) -> None:
    assert sip["409"].get("deprecated") is True
    assert sip["411"].get("deprecated") is True


def test_only_the_registry_deprecated_and_rfc2543_codes_are_deprecated(sip: dict[str, dict[str, Any]]) -> None:
    deprecated = {code for code, entry in sip.items() if entry.get("deprecated")}
    assert deprecated == {"202", "409", "411"}


def test_every_sip_class_has_a_class_entry(sip: dict[str, dict[str, Any]]) -> None:
    for klass in ("1xx", "2xx", "3xx", "4xx", "5xx", "6xx"):
        assert klass in sip, f"class entry {klass} is missing"
    assert sip["4xx"]["retry"] == "no"
    assert (sip["5xx"]["category"], sip["5xx"]["retry"]) == ("network", "failover")
    assert (sip["6xx"]["category"], sip["6xx"]["retry"]) == ("declined", "no")


def test_sip_entries_map_to_their_own_code(sip: dict[str, dict[str, Any]]) -> None:
    for code, entry in sip.items():
        if code[1:] != "xx":
            assert entry["sip"] == code


@pytest.mark.parametrize("cause", range(128))
def test_every_q850_cause_resolves_to_an_entry_or_its_class_entry(q850_catalog: dict[str, Any], cause: int) -> None:
    entry = resolve_q850(q850_catalog, cause)
    assert entry is not None, f"cause {cause} resolves to nothing"


def test_q850_classes_point_at_the_unspecified_cause_of_each_class(q850_catalog: dict[str, Any]) -> None:
    assert q850_catalog["classes"] == {
        "0-31": "31", "32-47": "47", "48-63": "63", "64-79": "79",
        "80-95": "95", "96-111": "111", "112-127": "127",
    }
    assert resolve_q850(q850_catalog, 0)["code"] == "31"
    assert resolve_q850(q850_catalog, 48)["code"] == "63"
    assert resolve_q850(q850_catalog, 120)["code"] == "127"


def test_q850_entries_carry_their_own_number(q850: dict[str, dict[str, Any]]) -> None:
    for code, entry in q850.items():
        assert entry["q850"] == int(code)


@pytest.mark.parametrize(("cause", "name"), [
    (16, "NORMAL_CLEARING"), (17, "USER_BUSY"), (18, "NO_USER_RESPONSE"), (19, "NO_ANSWER"),
    (21, "CALL_REJECTED"), (1, "UNALLOCATED_NUMBER"), (41, "NORMAL_TEMPORARY_FAILURE"),
    (34, "NORMAL_CIRCUIT_CONGESTION"), (127, "INTERWORKING"), (26, "ANSWERED_ELSEWHERE"),
])
def test_q850_symbolic_names_follow_the_switches(q850: dict[str, dict[str, Any]], cause: int, name: str) -> None:
    assert q850[str(cause)]["name"] == name


@pytest.mark.parametrize(("code", "cause"), [
    ("486", 17), ("480", 18), ("503", 41), ("404", 1), ("408", 102), ("603", 21), ("502", 38),
    ("484", 28), ("600", 17), ("405", 63),
])
def test_rfc3398_sip_to_q850_mapping(sip: dict[str, dict[str, Any]], code: str, cause: int) -> None:
    assert sip[code]["q850"] == cause


def test_rfc3398_gives_487_no_cause(sip: dict[str, dict[str, Any]]) -> None:
    assert "q850" not in sip["487"]


@pytest.mark.parametrize(("cause", "code"), [
    (17, "486"), (19, "480"), (34, "503"), (18, "408"), (1, "404"), (21, "403"), (28, "484"),
    (102, "504"), (127, "500"), (65, "488"),
])
def test_rfc3398_q850_to_sip_mapping(q850: dict[str, dict[str, Any]], cause: int, code: str) -> None:
    assert q850[str(cause)]["sip"] == code


def test_normal_clearing_has_no_sip_response(q850: dict[str, dict[str, Any]]) -> None:
    assert "sip" not in q850["16"]


@pytest.mark.parametrize(("code", "cause"), [
    ("480", 19), ("503", 34), ("500", 38), ("502", 27), ("408", 18), ("488", 58), ("606", 58),
    ("487", 127), ("405", 127), ("420", 3), ("501", 29), ("409", 41),
])
def test_asterisk_sip2cause_differences(sip: dict[str, dict[str, Any]], code: str, cause: int) -> None:
    """Values read from ast_sip_hangup_sip2cause() in Asterisk's res/res_pjsip.c."""
    assert sip[code]["q850_asterisk"] == cause


@pytest.mark.parametrize(("code", "cause"), [
    ("485", 3), ("604", 3), ("488", 88), ("606", 88), ("487", 16), ("607", 31), ("422", 31),
])
def test_freeswitch_sip_cause_differences(sip: dict[str, dict[str, Any]], code: str, cause: int) -> None:
    """Values read from sofia_glue_sip_cause_to_freeswitch() in FreeSWITCH's sofia_glue.c."""
    assert sip[code]["q850_freeswitch"] == cause


@pytest.mark.parametrize("code", ["486", "404", "603", "504", "600"])
def test_no_switch_field_where_both_switches_agree_with_rfc3398(sip: dict[str, dict[str, Any]], code: str) -> None:
    assert "q850_asterisk" not in sip[code]
    assert "q850_freeswitch" not in sip[code]


def test_switch_fields_are_never_equal_to_the_rfc_value(sip: dict[str, dict[str, Any]]) -> None:
    for code, entry in sip.items():
        for field in ("q850_asterisk", "q850_freeswitch"):
            if field in entry:
                assert entry[field] != entry.get("q850"), f"{code}.{field} repeats q850"


@pytest.mark.parametrize("catalog_id", ["sip", "q850"])
def test_every_entry_has_uk_ru_en_texts_on_one_line(catalog_id: str) -> None:
    for entry in load(catalog_id)["entry"]:
        text = entry["text"]
        assert set(text) == {"uk", "ru", "en"}, entry["code"]
        for lang, value in text.items():
            assert value.strip(), f"{entry['code']} has an empty {lang} text"
            assert "\r" not in value and "\n" not in value, f"{entry['code']} {lang} text spans lines"


@pytest.mark.parametrize("catalog_id", ["sip", "q850"])
def test_entries_follow_the_catalog_format(catalog_id: str) -> None:
    catalog = load(catalog_id)
    assert set(catalog) <= TOP_KEYS
    codes = [entry["code"] for entry in catalog["entry"]]
    assert len(codes) == len(set(codes)), "duplicate codes"
    for entry in catalog["entry"]:
        assert set(entry) <= ENTRY_KEYS, f"{entry['code']}: unknown keys {set(entry) - ENTRY_KEYS}"
        assert isinstance(entry["code"], str)
        assert entry["category"] in CATEGORIES, entry["code"]
        assert entry["retry"] in RETRIES, entry["code"]
        assert entry.get("fault", "caller") in FAULTS, entry["code"]
        for field in ("q850", "q850_asterisk", "q850_freeswitch"):
            if field in entry:
                assert isinstance(entry[field], int) and 0 <= entry[field] <= 127, (entry["code"], field)
    for target in catalog.get("classes", {}).values():
        assert target in codes
