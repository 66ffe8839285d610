"""The store keeps what the quality measures need (attempt, outcome, timings) and gives the legs of a range back:
the measures over the store equal the measures over the live annotations (SQLite and PostgreSQL)."""
from __future__ import annotations

import pytest

from pbx_codes.quality.classes import load_table
from pbx_codes.quality.legs import leg_from_annotation
from pbx_codes.quality.measures import per_trunk
from pbx_codes.quality.source import legs_in_range
from support.seizures import MIX_EXPECTED, mix, seizure

pytestmark = pytest.mark.asyncio


async def test_measures_over_the_store_equal_the_hand_computed_mix(store):
    for ann in mix("lifecell", start=1_000_000.0):
        store.add(ann)
    store.add(seizure("lifecell", "busy", "486", attempt=None, leg="caller"))  # the caller's leg: no seizure
    await store.flush(10)
    legs = await legs_in_range(store, 999_000.0, 1_002_000.0)
    (result,) = per_trunk(legs, load_table())
    assert {k: result[k] for k in MIX_EXPECTED} == pytest.approx(MIX_EXPECTED)
    live = per_trunk([leg_from_annotation(a) for a in mix("lifecell", start=1_000_000.0)], load_table())
    assert [result] == live


async def test_the_range_and_trunk_filters_select_legs(store):
    for ann in mix("a", start=1_000_000.0) + mix("b", start=2_000_000.0):
        store.add(ann)
    await store.flush(10)
    assert {leg.trunk for leg in await legs_in_range(store, 0.0, 1_500_000.0)} == {"a"}
    assert len(await legs_in_range(store, 0.0, 3_000_000.0, trunk="b")) == 10
    assert await legs_in_range(store, 3_000_000.0, 4_000_000.0) == []


async def test_the_consoles_in_memory_view_gives_the_same_legs():
    from pbx_codes.console.memory_store import MemoryStore

    memory = MemoryStore(100)
    for ann in mix("lifecell", start=1_000_000.0):
        memory.add(ann)
    legs = await legs_in_range(memory, 999_000.0, 1_002_000.0)
    (result,) = per_trunk(legs, load_table())
    assert {k: result[k] for k in MIX_EXPECTED} == pytest.approx(MIX_EXPECTED)
