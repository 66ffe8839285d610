"""The trunk quality table computed inside PostgreSQL equals the one computed over the legs in Python (every
measure, class, response bucket and top failure), per trunk and per agent, over a mix with every outcome shape."""
from __future__ import annotations

import random
from dataclasses import replace

import pytest

from pbx_codes.model import Outcome
from pbx_codes.quality.classes import load_table
from pbx_codes.quality.measures import per_trunk
from pbx_codes.quality.source import legs_in_range
from pbx_codes.store import open_store
from pbx_codes.store.quality_sql import same_measures, trunk_quality_raw
from support.seizures import MIX_EXPECTED, mix, seizure

pytestmark = pytest.mark.asyncio


def varied(rng: random.Random, n: int) -> list:
    """Seizures on three trunks of two PBXs and two agents: answers, busy, ring timeouts, cancels, 3xx, 503s,
    local failures, attempts that sent no INVITE, legs with no timings, some with an unknown code."""
    shapes = [("ok", "200", Outcome.ANSWERED), ("busy", "486", Outcome.CARRIER_FINAL),
              ("no_answer", "480", Outcome.RING_TIMEOUT), ("cancelled", "487", Outcome.CALLER_CANCEL),
              ("capacity", "503", Outcome.CARRIER_FINAL), ("unavailable", "302", Outcome.CARRIER_FINAL),
              ("network", "502", Outcome.UNREACHABLE), ("unknown", "499", Outcome.CARRIER_FINAL),
              ("network", None, Outcome.UNREACHABLE), ("capacity", None, Outcome.PBX_LIMIT),  # no INVITE sent,
              ("network", "404", Outcome.UNREACHABLE)]  # nor here: 404 only names Q.850 3 (no route), no code
    out = []
    for i in range(n):
        category, sip, outcome = shapes[rng.randrange(len(shapes))]
        timed = rng.random() > 0.1
        ann = seizure(f"t{i % 3}", category, sip, start=1_000_000.0 + i, leg=f"v{i}",
                      pbx=("asterisk", "freeswitch")[i % 2], outcome=outcome,
                      pdd=rng.uniform(0.1, 9.0) if rng.random() > 0.2 else None,
                      answer_after=rng.uniform(9.5, 20.0) if category == "ok" else None,
                      talk=rng.uniform(1.0, 300.0) if category == "ok" else None,
                      end_after=rng.uniform(0.2, 30.0))
        if outcome is Outcome.UNREACHABLE and sip == "404":
            ann = replace(ann, resolution=replace(ann.resolution, code=None))
        obs = replace(ann.observation, instance=f"pbx-{i % 2}")
        if not timed:  # a PBX that told no timings
            obs = replace(obs, started_at=None, progress_at=None, answered_at=None)
        out.append(replace(ann, observation=obs))
    return out


async def test_postgresql_table_equals_the_python_one(postgres_url, tmp_path):
    store = await open_store(postgres_url, {"flush_ms": 10, "retention_days": None, "journal": str(tmp_path / "j")})
    store.start()
    try:
        for ann in mix("lifecell", start=1_000_000.0) + varied(random.Random(14), 600):
            store.add(ann)
        await store.flush(timeout=30)
        table = load_table()
        inside = await trunk_quality_raw(store.backend, table, 999_000.0, 1_002_000.0)
        outside = per_trunk(await legs_in_range(store, 999_000.0, 1_002_000.0), table)
        assert len(inside) == 7 and same_measures(inside, outside)  # lifecell, 3 trunks x 2 PBXs
        assert all(0 < r["invites"] < r["seizures"] for r in inside if r["trunk"] != "lifecell")
        lifecell = next(r for r in inside if r["trunk"] == "lifecell")
        assert {k: lifecell[k] for k in MIX_EXPECTED} == pytest.approx(MIX_EXPECTED)
        one = await trunk_quality_raw(store.backend, table, 999_000.0, 1_002_000.0, instance="pbx-1", trunk="t1")
        legs = [leg for leg in await legs_in_range(store, 999_000.0, 1_002_000.0, trunk="t1")
                if leg.instance == "pbx-1"]
        assert len(one) >= 1 and same_measures(one, per_trunk(legs, table))
    finally:
        await store.close()
