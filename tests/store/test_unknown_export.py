"""Codes no catalog knew exactly are counted, and exported as a starter catalog that parses, loads and is marked
for review; hostile phrases stay inside their strings."""
from __future__ import annotations

import tomllib

import pytest

from pbx_codes.catalog import load_catalogs
from pbx_codes.catalog.loader import build_set, parse_file
from pbx_codes.resolve import Resolver
from pbx_codes.store import Store
from pbx_codes.store.export import starter_catalog
from store.store_support import hangup

HOSTILE = 'Weird"\n[[entry]]\ncode = "666"\\'


async def feed_unknown(store: Store, resolver: Resolver) -> None:
    for i in range(3):
        store.add(hangup(resolver, sip="499", phrase="Carrier Says No", leg_id=f"a{i}"))
    store.add(hangup(resolver, sip="499", phrase="carrier says  NO", leg_id="a9"))  # folds to the same phrase
    for i in range(2):
        store.add(hangup(resolver, sip="799", phrase=HOSTILE, leg_id=f"b{i}"))
    store.add(hangup(resolver, sip="799", phrase="Другий текст", leg_id="b9"))
    store.add(hangup(resolver, sip="599", phrase=None, trunk="gw-other", leg_id="c1"))
    store.add(hangup(resolver, sip="486", phrase="Busy Here", leg_id="known"))  # known exactly: not listed
    await store.flush(timeout=30)


@pytest.mark.asyncio
async def test_unknown_codes_are_counted_with_what_they_fell_back_to(store: Store, resolver: Resolver) -> None:
    await feed_unknown(store, resolver)
    items = await store.unknown_codes()
    summary = [(i["trunk"], i["code"], i["phrase"], i["count"], i["match_kind"]) for i in items]
    assert summary[0] == ("lifecell-trunk", "499", "Carrier Says No", 3, "class")
    assert ("lifecell-trunk", "799", HOSTILE, 2, "none") in summary
    assert ("gw-other", "599", None, 1, "class") in summary
    assert "486" not in {i["code"] for i in items}
    assert items[0]["category"] == "request_error" and items[0]["texts"]["en"]
    assert {i["code"] for i in await store.unknown_codes(trunk="gw-other")} == {"599"}


@pytest.mark.asyncio
async def test_export_parses_back_loads_as_a_catalog_and_marks_every_entry_for_review(
        store: Store, resolver: Resolver) -> None:
    await feed_unknown(store, resolver)
    text = await store.export_unknown("lifecell-trunk")

    raw = tomllib.loads(text)
    assert raw["id"] == "lifecell-trunk-observed"
    entries = raw["entry"]
    assert [(e["code"], e.get("phrase"), e.get("match")) for e in entries] == [
        ("499", "Carrier Says No", None),
        ("799", HOSTILE, None),
        ("799", "Другий текст", "Другий текст"),
    ]
    assert all(e["note"].startswith("TODO review") for e in entries)
    assert entries[0]["category"] == "request_error"  # the 4xx class it was read by
    assert entries[1]["category"] == "request_error" and "placeholder" in entries[1]["note"]
    assert all(e["text"][lang] for e in entries for lang in ("uk", "ru", "en"))

    catalog = parse_file("observed.toml", text)
    merged = build_set([*load_catalogs(), catalog])
    assert merged[catalog.id].lookup("499")[0].phrase == "Carrier Says No"
    assert Resolver(merged, bindings={"t": catalog.id}).lookup("799", catalog=catalog.id).exact is True


def test_export_of_nothing_is_still_a_valid_catalog_header() -> None:
    raw = tomllib.loads(starter_catalog([], "Київ trunk/1"))
    assert raw["id"] == "trunk-1-observed" and "entry" not in raw
