"""The outcome model refines the catalogs' answer once, for both PBXs."""
from __future__ import annotations

from pbx_codes.catalog.loader import load_catalogs
from pbx_codes.model import Category, Observation, Outcome, Retry, Side
from pbx_codes.resolve.resolver import Resolver


def _resolver() -> Resolver:
    return Resolver(load_catalogs())


def test_pbx_made_408_of_an_unreachable_trunk_is_a_network_failure_worth_failover() -> None:
    ann = _resolver().resolve(Observation(sip_code="408", outcome=Outcome.UNREACHABLE, certain=False))
    assert ann.category in (Category.NETWORK, Category.UNAVAILABLE)
    assert ann.retry is Retry.FAILOVER
    assert ann.exact is False and ann.to_dict()["exact"] is False


def test_ring_timeout_is_no_answer_never_ok() -> None:
    ann = _resolver().resolve(Observation(sip_code="180", phrase="Ringing", outcome=Outcome.RING_TIMEOUT))
    assert ann.category is Category.NO_ANSWER and ann.fault is Side.CALLEE


def test_same_code_without_outcome_keeps_the_catalog_answer_and_the_cache_keeps_them_apart() -> None:
    resolver = _resolver()
    plain = resolver.resolve(Observation(sip_code="503"))
    limited = resolver.resolve(Observation(sip_code="503", outcome=Outcome.PBX_LIMIT))
    again = resolver.resolve(Observation(sip_code="503"))
    assert limited.fault is Side.LOCAL
    assert again.resolution is plain.resolution and again.fault == plain.fault
    assert limited.to_dict()["outcome"] == "pbx_limit"
