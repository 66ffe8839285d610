"""Faults during a run of real failed calls through the real Asterisk, then `pbx-codes enrich` over the CDR files.

Each test drives a few dozen failed calls (sipp caller and carrier, ``503 Simultaneous calls limit reached``,
catalog ``lifecell``) through the session's Asterisk with the shipped dialplan, puts one fault in the middle of
the run (placed by CDR count, see `fault_scenarios`), and counts the run's records in the cdr_custom CSV file and
the cdr_sqlite3_custom database: how many carry the pbx_* annotation as Asterisk wrote them, and how many after
``pbx-codes enrich`` with the presets of the shipped templates. The counts, not the times, are the proof:

- no fault may leave a record unannotated once `enrich` has run, and what `enrich` writes is what the live server
  writes for the same failure;
- faults that do not touch the FastAGI path (AMI cut, store outage) leave nothing for `enrich` to do;
- the store loses no annotation and stores none twice across its database's crash and restart.

bench/fault_runs.py runs the same scenarios with more calls and prints the table quoted in the README.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest_postgres import LocalPostgres
from integration import fault_scenarios as fs
from pbx_codes.testbed.asterisk import AsteriskBench

CALLS, RATE = 24, 6


def _assert_backfilled(outcome: fs.FaultOutcome) -> None:
    """Nothing left unannotated in either backend, every annotation says what the live server says, no row lost."""
    assert (outcome.csv_after.records, outcome.csv_after.missing, outcome.csv_after.wrong) == (
        outcome.live.records, 0, 0)
    assert (outcome.sqlite_after.records, outcome.sqlite_after.missing, outcome.sqlite_after.wrong) == (
        outcome.sqlite_live.records, 0, 0)
    assert outcome.sqlite_live.records == outcome.live.records
    assert outcome.live.wrong == 0


def test_fastagi_server_restart_leaves_the_outage_calls_unannotated_until_enrich_backfills_them(
        asterisk_bench: AsteriskBench, tmp_path: Path) -> None:
    outcome = fs.agi_restart(asterisk_bench, calls=CALLS, rate=RATE, work=tmp_path)
    assert outcome.live.records == CALLS
    assert outcome.extra["agi_starts"] == 2
    # The fault was real: some calls went unannotated, and the ones before and after it were annotated live.
    assert 0 < outcome.live.missing < CALLS
    assert outcome.sqlite_live.missing == outcome.live.missing
    _assert_backfilled(outcome)


def test_asterisk_restart_mid_run_leaves_no_record_unannotated_after_enrich(
        asterisk_bench: AsteriskBench, tmp_path: Path) -> None:
    outcome = fs.asterisk_restart(asterisk_bench, calls=CALLS, rate=RATE, work=tmp_path)
    assert asterisk_bench.running and outcome.extra["asterisk_pids"] == 2  # it really was another process
    # Calls before and after the restart have records; a call cut by the restart may have none.
    assert CALLS // 2 <= outcome.live.records <= CALLS
    _assert_backfilled(outcome)


def test_ami_connection_cut_twice_costs_no_cdr_annotation_and_no_duplicate_publication(
        asterisk_bench: AsteriskBench, tmp_path: Path) -> None:
    outcome = fs.ami_cut(asterisk_bench, calls=CALLS, rate=RATE, work=tmp_path)
    assert (outcome.live.records, outcome.live.missing) == (CALLS, 0)
    assert outcome.extra["ami_reconnects"] >= 2
    assert outcome.extra["ami_gaps_logged"] >= 2
    # What AMI publishes for calls during a gap is missing (and logged as a gap), never published twice.
    assert outcome.extra["ami_published"] == outcome.extra["ami_published_calls"] <= CALLS
    assert outcome.extra["ami_published_calls"] > 0
    _assert_backfilled(outcome)


def test_store_database_crash_and_restart_loses_no_annotation_and_stores_none_twice(
        asterisk_bench: AsteriskBench, postgres_server: LocalPostgres, postgres_url: str, tmp_path: Path) -> None:
    outcome = fs.store_outage(asterisk_bench, calls=CALLS, rate=RATE, work=tmp_path, store_url=postgres_url,
                              stop_database=lambda: postgres_server.stop("immediate"),
                              start_database=postgres_server.start)
    assert (outcome.live.records, outcome.live.missing) == (CALLS, 0)
    assert outcome.extra["store_write_failures"] > 0  # the outage was felt by the writer
    assert (outcome.extra["store_rows"], outcome.extra["store_distinct"], outcome.extra["store_lost"]) == (
        CALLS, CALLS, 0)
    assert (outcome.extra["store_dropped"], outcome.extra["store_rejected"]) == (0, 0)
    _assert_backfilled(outcome)


@pytest.mark.parametrize("live, after", [(fs.CdrCount(5, 3), fs.CdrCount(5, 5)), (fs.CdrCount(5, 5, 1), None)])
def test_backfill_check_fails_on_a_lost_row_or_a_wrong_annotation(live: fs.CdrCount,
                                                                  after: fs.CdrCount | None) -> None:
    """The assertion helper itself can fail: a row lost by enrich, or a live annotation that is not the 503's."""
    outcome = fs.FaultOutcome("self-check", 5, 0, live, fs.CdrCount(4, 4) if after else fs.CdrCount(5, 5),
                              live, after or fs.CdrCount(5, 5), 0)
    with pytest.raises(AssertionError):
        _assert_backfilled(outcome)
