"""A leg is stored once, whichever path reports it: the row id is the leg's identity, not a random number."""
from __future__ import annotations

import sqlite3
import time
from dataclasses import replace

import pytest

from pbx_codes.model import Observation, Outcome, Side
from pbx_codes.resolve import Resolver
from pbx_codes.store import Store, open_store
from pbx_codes.store.schema import MIGRATIONS, SQLITE, row_from_annotation, row_identity


def test_the_same_freeswitch_leg_gets_the_same_row_id_whatever_else_differs(resolver: Resolver) -> None:
    live = resolver.resolve(Observation(sip_code="503", pbx="freeswitch", leg_id="2d86b2ed", call_id="f0a7",
                                        channel="sofia/external/0501234567", timestamp=1.5))
    from_cdr = resolver.resolve(Observation(sip_code="503", pbx="freeswitch", leg_id="2d86b2ed", call_id=None,
                                            timestamp=1.0))
    other_leg = resolver.resolve(Observation(sip_code="486", pbx="freeswitch", leg_id="095c71f7", call_id="f0a7",
                                             channel="sofia/external/0501234567"))
    assert row_from_annotation(live)["rid"] == row_from_annotation(from_cdr)["rid"]
    assert row_from_annotation(other_leg)["rid"] != row_from_annotation(live)["rid"]


def test_an_asterisk_leg_is_named_by_its_call_and_dialed_channel_as_its_cdr_row_names_it() -> None:
    live = row_identity("asterisk", leg_id="1795422889.1", call_id="1795422889.0", channel="PJSIP/trunk-00000001")
    cdr = row_identity("asterisk", leg_id=None, call_id="1795422889.0", channel="PJSIP/trunk-00000001")
    assert live == cdr
    assert row_identity("asterisk", call_id="1795422889.0", channel="PJSIP/trunk-00000002") != live
    assert row_identity("freeswitch", leg_id="1795422889.0") != row_identity("asterisk", leg_id="1795422889.0")
    assert row_identity("freeswitch", leg_id=None, call_id="x") is None


def test_a_row_without_a_leg_still_gets_a_fresh_id(resolver: Resolver) -> None:
    ann = resolver.resolve(Observation(sip_code="503"))
    assert row_from_annotation(ann)["rid"] != row_from_annotation(ann)["rid"]


@pytest.mark.asyncio
async def test_a_leg_reported_by_two_paths_is_one_row_with_its_outcome_attempt_and_timings(
        store: Store, resolver: Resolver) -> None:
    now = time.time()
    obs = Observation(sip_code="503", phrase="Service Unavailable", pbx="freeswitch", leg_id="b1", call_id="a",
                      hangup_by=Side.CARRIER, timestamp=now, outcome=Outcome.CARRIER_FINAL, attempt=1,
                      started_at=now - 0.3, progress_at=None, answered_at=None, ended_at=now)
    store.add(resolver.resolve(obs))
    store.add(resolver.resolve(replace(obs, timestamp=now + 0.01)))    # the hook's report of the same leg
    store.add(resolver.resolve(obs).to_dict())                          # a journal line of it
    await store.flush(timeout=30)
    rows = await store.call("a")
    assert len(rows) == 1 and await store.count() == 1
    assert (rows[0]["outcome"], rows[0]["attempt"], rows[0]["started_at"], rows[0]["ended_at"]) == (
        "carrier_final", 1, pytest.approx(now - 0.3), pytest.approx(now))


@pytest.mark.asyncio
async def test_a_database_of_the_previous_version_gains_the_new_columns_and_keeps_its_rows(tmp_path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT, applied_at REAL)")
    for migration in MIGRATIONS[:2]:
        for statement in migration.render(SQLITE):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (?, ?, ?)", (migration.version, migration.description, 0))
    conn.execute("INSERT INTO hangups (rid, ts, stored_at, pbx, uniqueid, category, retry, hangup_by) "
                 "VALUES ('old', 1, 1, 'asterisk', 'u1', 'busy', 'later', 'carrier')")
    conn.commit()
    conn.close()
    store = await open_store(f"sqlite://{path}", {"journal": str(tmp_path / "j.jsonl"), "retention_days": None})
    try:
        rows = await store.recent(limit=10)
        assert [(r["rid"], r["uniqueid"], r["outcome"], r["attempt"]) for r in rows] == [("old", "u1", None, None)]
    finally:
        await store.close()


def test_two_agents_of_a_fleet_reusing_the_same_ids_are_two_legs() -> None:
    # Two Asterisks started in the same second name their first calls alike (uniqueid = start time + counter).
    same = dict(leg_id="1796122910.1", call_id="1796122910.0", channel="PJSIP/lifecell-5061-00000000")
    a, b = (row_identity("asterisk", instance=name, **same) for name in ("pbx-a", "pbx-b"))
    assert a != b and a == row_identity("asterisk", instance="pbx-a", **same)
    assert row_identity("asterisk", **same) not in (a, b)
