"""The one reconnect policy of the PBX clients (AMI and ESL): quick after an outage, patient with a refused login.

What ended the last attempt decides the wait before the next one:

- **unreachable** (the TCP connect was refused, timed out, had no route): try again every `probe_interval`
  (about half a second), however long the outage lasts. A refused connect costs the PBX nothing (the kernel
  answers it), so this is the cheap probe that gets a listener back within about a second of the PBX listening
  again; the failure count is left as it was.
- **refused** (the PBX answered and refused the login or the password): wait at least `refused_minimum` (a
  minute): the secret is wrong and a tight loop would only fill the PBX's log, or get us banned.
- **failed** (the PBX accepted the login, then sent garbage or closed at once): the wait grows exponentially up
  to `maximum`, so a broken or hostile server is not hammered.
- **ended** (a session that worked, then ended without a protocol error: the PBX restarted, the network dropped):
  the failure count starts over, and the first retry comes after `initial`. A session worked when it carried
  well-formed traffic after the login, or stayed up `stable_after` seconds (a quiet PBX sends nothing for a while;
  a broken one breaks at once).

Every wait has +/- `jitter` so a fleet of listeners does not reconnect in step.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum


class Ending(Enum):
    """How one connection attempt ended, as far as the backoff cares."""

    UNREACHABLE = "unreachable"
    REFUSED = "refused"
    FAILED = "failed"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    initial: float = 0.5
    maximum: float = 30.0
    jitter: float = 0.2  # +/- fraction of every wait
    probe_interval: float = 0.5
    refused_minimum: float = 60.0
    stable_after: float = 5.0

    def __post_init__(self) -> None:
        for name in ("initial", "maximum", "probe_interval", "refused_minimum", "stable_after"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"backoff {name} must be a number >= 0, got {value!r}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"backoff jitter must be in [0, 1), got {self.jitter!r}")

    def exponential(self, failures: int) -> float:
        """The un-jittered wait after `failures` consecutive failures (0: the first)."""
        return min(self.maximum, self.initial * (2 ** min(failures, 30)))


class Backoff:
    """The state between attempts: how many failed in a row, and the wait the last ending asks for."""

    def __init__(self, policy: BackoffPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self.failures = 0
        self._rng = rng or random.Random()

    def after(self, ending: Ending) -> float:
        """Seconds to wait before the next attempt, given how this one ended."""
        p = self.policy
        if ending is Ending.UNREACHABLE:
            return self._jittered(p.probe_interval)
        if ending is Ending.ENDED:
            self.failures = 0
            return self._jittered(p.initial)
        wait = p.exponential(self.failures)
        self.failures += 1
        if ending is Ending.REFUSED:  # never below the minimum: jitter only lengthens this wait
            return max(wait, p.refused_minimum) * (1.0 + p.jitter * self._rng.uniform(0.0, 1.0))
        return self._jittered(wait)

    def _jittered(self, wait: float) -> float:
        return max(0.0, wait * (1.0 + self.policy.jitter * self._rng.uniform(-1.0, 1.0)))


__all__ = ["Backoff", "BackoffPolicy", "Ending"]
