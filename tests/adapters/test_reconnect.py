"""The one reconnect policy of the AMI and ESL clients: what ended an attempt decides the wait before the next."""
from __future__ import annotations

import random

import pytest

from pbx_codes.adapters.reconnect import Backoff, BackoffPolicy, Ending

POLICY = BackoffPolicy(initial=0.5, maximum=30.0, jitter=0.0, probe_interval=0.5, refused_minimum=60.0)


def test_an_unreachable_peer_is_probed_on_the_short_period_however_many_attempts_failed() -> None:
    backoff = Backoff(POLICY)
    assert {backoff.after(Ending.UNREACHABLE) for _ in range(1000)} == {0.5}


def test_a_peer_that_accepts_then_breaks_waits_longer_each_time_up_to_the_maximum() -> None:
    backoff = Backoff(POLICY)
    assert [backoff.after(Ending.FAILED) for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]


def test_probing_an_outage_keeps_the_failure_count_of_the_broken_sessions_before_it() -> None:
    backoff = Backoff(POLICY)
    backoff.after(Ending.FAILED), backoff.after(Ending.FAILED)
    for _ in range(50):
        backoff.after(Ending.UNREACHABLE)
    assert backoff.after(Ending.FAILED) == 2.0  # still growing: the outage did not make the server good again


def test_a_refused_login_waits_at_least_the_minimum_even_with_jitter() -> None:
    backoff = Backoff(BackoffPolicy(jitter=0.2, refused_minimum=60.0), random.Random(5))
    waits = [backoff.after(Ending.REFUSED) for _ in range(200)]
    assert min(waits) >= 60.0 and max(waits) <= 72.0


def test_a_session_that_worked_starts_the_count_over() -> None:
    backoff = Backoff(POLICY)
    for _ in range(6):
        backoff.after(Ending.FAILED)
    assert backoff.after(Ending.ENDED) == 0.5 and backoff.after(Ending.FAILED) == 0.5


def test_jitter_stays_within_its_fraction() -> None:
    backoff = Backoff(BackoffPolicy(probe_interval=0.5, jitter=0.2), random.Random(1))
    waits = [backoff.after(Ending.UNREACHABLE) for _ in range(500)]
    assert 0.4 <= min(waits) < max(waits) <= 0.6


@pytest.mark.parametrize("bad", [{"initial": -1}, {"jitter": 1.0}, {"probe_interval": "fast"}])
def test_a_bad_policy_is_refused_with_its_field_named(bad) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        BackoffPolicy(**bad)
