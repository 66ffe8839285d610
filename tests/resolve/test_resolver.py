"""The resolver's order of precedence, class fallback and its promise never to raise, over the shipped catalogs."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pbx_codes.model import Category, Observation, Retry, Side
from pbx_codes.resolve import Resolver, failing_leg


def test_provider_meaning_overrides_the_standard_one(resolver: Resolver) -> None:
    ann = resolver.lookup("409", "Not enough money", catalog="lifecell")
    assert (ann.catalog, ann.category, ann.exact, ann.match_kind) == ("lifecell", Category.BILLING, True, "code")
    assert ann.texts["uk"].startswith("на балансах номера")
    standard = resolver.lookup("409", catalog="sip")
    assert standard.catalog == "sip" and standard.category != Category.BILLING


def test_two_lifecell_500_entries_are_told_apart_by_phrase(resolver: Resolver) -> None:
    plain = resolver.lookup("500", "Service Unavailable", catalog="lifecell")
    forwarded = resolver.lookup("500", "Service Unavailable. X-FWD-Original incorrect", catalog="lifecell")
    assert plain.match_kind == "code" and forwarded.match_kind == "phrase"
    assert plain.texts["uk"] != forwarded.texts["uk"]
    assert "переадресація" in forwarded.texts["uk"]


def test_phrase_match_ignores_case_and_spacing(resolver: Resolver) -> None:
    ann = resolver.lookup("500", "service unavailable.   x-fwd-original   INCORRECT", catalog="lifecell")
    assert ann.match_kind == "phrase"


def test_lifecell_501_and_502_share_one_meaning(resolver: Resolver) -> None:
    a, b = resolver.lookup("501", catalog="lifecell"), resolver.lookup("502", catalog="lifecell")
    assert a.catalog == b.catalog == "lifecell" and a.texts == b.texts


def test_unknown_provider_code_falls_to_the_standard_code(resolver: Resolver) -> None:
    ann = resolver.lookup("486", catalog="sipcall")
    assert ann.catalog == "sipcall"
    ann = resolver.lookup("606", catalog="lifecell")
    assert (ann.catalog, ann.match_kind, ann.exact) == ("sip", "code", True)


def test_unknown_sip_code_falls_to_its_class(resolver: Resolver) -> None:
    ann = resolver.lookup("499", catalog="lifecell")
    assert (ann.catalog, ann.matched, ann.match_kind, ann.exact) == ("sip", "4xx", "class", False)
    assert resolver.lookup("599").matched == "5xx"


def test_mango_reads_an_unknown_code_as_its_nearest_class(resolver: Resolver) -> None:
    ann = resolver.lookup("2219", catalog="mango")
    assert (ann.matched, ann.exact, ann.match_kind) == ("221x", False, "class")
    assert ann.texts["ru"] == resolver.lookup("2210", catalog="mango").texts["ru"]
    ann = resolver.lookup("1090", catalog="mango")
    assert ann.matched == "1xxx"
    assert ann.texts["ru"] == "Действие успешно выполнено"
    assert resolver.lookup("2211", catalog="mango").exact


def test_voipnow_code_depends_on_the_method_and_keeps_leading_zeros(resolver: Resolver) -> None:
    dup = resolver.lookup("200", catalog="voipnow", method="AddChannel")
    assign = resolver.lookup("200", catalog="voipnow", method="AssignPublicNo")
    assert dup.texts["en"] == "Duplicate record.{object_detail}"
    assert assign.texts["en"].startswith("Unable to completely assign public phone numbers")
    assert dup.exact and assign.exact
    assert resolver.lookup("200", catalog="voipnow").exact is False  # ambiguous without a method
    assert resolver.lookup("030", catalog="voipnow").texts["en"] == "No records."
    assert resolver.lookup("30", catalog="voipnow").match_kind == "none"


def test_callback_pairs_name_the_leg_and_unknown_pairs_fall_to_the_failing_legs_sip_code(resolver: Resolver) -> None:
    ann = resolver.lookup("200/486", catalog="callback")
    assert (ann.catalog, ann.category, ann.exact) == ("callback", Category.BUSY, True)
    unknown = resolver.lookup("200/482", catalog="callback")
    assert unknown.catalog == "sip" and unknown.matched == "482"
    assert failing_leg("200/486") == "486" and failing_leg("486/0") == "486" and failing_leg("x") is None


def test_sipcall_portal_message_matches_by_phrase_under_any_code(resolver: Resolver) -> None:
    ann = resolver.lookup("403", "This call is not covered by your tariff plan", catalog="sipcall")
    assert (ann.match_kind, ann.catalog) == ("phrase", "sipcall")
    assert resolver.lookup("This account is not valid", catalog="sipcall").match_kind in ("code", "phrase")


def test_trunk_binding_selects_the_catalog(resolver: Resolver) -> None:
    ann = resolver.resolve(Observation(sip_code="409", phrase="Not enough money", trunk="lifecell-trunk",
                                       hangup_by=Side.CARRIER, leg_id="B1", call_id="A1"))
    assert ann.catalog == "lifecell" and ann.hangup_by == Side.CARRIER
    assert ann.to_dict()["uniqueid"] == "B1" and ann.to_dict()["linkedid"] == "A1"


def test_q850_answers_when_no_sip_code_is_known(resolver: Resolver) -> None:
    ann = resolver.resolve(Observation(q850=17))
    assert (ann.catalog, ann.match_kind, ann.exact, ann.category) == ("q850", "q850", False, Category.BUSY)
    assert resolver.resolve(Observation(q850=45)).matched == "32-47"  # an unassigned cause reads as its class


def test_q850_catalog_lookup_by_number(resolver: Resolver) -> None:
    ann = resolver.lookup("17", catalog="q850")
    assert ann.catalog == "q850" and ann.category == Category.BUSY


def test_nothing_known_still_annotates(resolver: Resolver) -> None:
    ann = resolver.resolve(Observation(sip_code="999", catalog="nope"))
    assert (ann.category, ann.match_kind, ann.retry) == (Category.UNKNOWN, "none", Retry.NO)
    assert ann.texts["en"]
    assert resolver.resolve(Observation()).match_kind == "none"


def test_repeated_keys_share_one_cached_resolution(resolver: Resolver) -> None:
    a = resolver.resolve(Observation(sip_code="486", leg_id="1"))
    b = resolver.resolve(Observation(sip_code="486", leg_id="2"))
    assert a.resolution is b.resolution and a.observation.leg_id != b.observation.leg_id


@settings(max_examples=300, deadline=None)
@given(code=st.one_of(st.none(), st.text(max_size=12)), phrase=st.one_of(st.none(), st.text(max_size=40)),
       q850=st.one_of(st.none(), st.integers(-5, 300)), catalog=st.sampled_from(
           [None, "sip", "q850", "lifecell", "callback", "sipcall", "mango", "voipnow", "missing"]),
       method=st.one_of(st.none(), st.sampled_from(["AddChannel", "GetChannels", "x"])))
def test_resolver_never_raises(catalogs, code, phrase, q850, catalog, method) -> None:
    ann = Resolver(catalogs).resolve(Observation(sip_code=code, provider_code=code, phrase=phrase, q850=q850,
                                                 catalog=catalog, method=method))
    assert ann.category in Category
    assert ann.to_dict()["texts"]


@settings(max_examples=200, deadline=None)
@given(code=st.one_of(st.text(alphabet="0123456789²³¹٣𝟓", min_size=1, max_size=8), st.just("9" * 5000)),
       catalog=st.sampled_from(["q850", "sip", "mango", None]))
def test_lookup_of_any_digit_like_code_never_raises(catalogs, code, catalog) -> None:
    ann = Resolver(catalogs).lookup(code, catalog=catalog)
    assert ann.category in Category


def test_lookup_in_q850_of_a_superscript_digit_is_unknown_not_an_error(catalogs) -> None:
    assert Resolver(catalogs).lookup("1²", catalog="q850").match_kind == "none"
