"""Resolutions per second on one core, for repeated keys (the live case: a PBX sees the same few causes all day).

Reported as a ratio to a baseline measured in the same run: the same resolver with its cache bypassed, i.e. the full
precedence walk every time. Target: >= 1,000,000 cached resolutions/s.

    python bench/bench_resolver.py [--seconds 2]
"""
from __future__ import annotations

import argparse
import itertools
import time

from pbx_codes.catalog import load_catalogs
from pbx_codes.model import Observation
from pbx_codes.resolve import Resolver

KEYS = [
    Observation(sip_code="486", phrase="Busy Here", trunk="lifecell", leg_id="b1", call_id="a1"),
    Observation(sip_code="503", phrase="Simultaneous calls limit reached", trunk="lifecell"),
    Observation(sip_code="409", phrase="Not enough money", trunk="lifecell"),
    Observation(sip_code="500", phrase="Service Unavailable. X-FWD-Original incorrect", trunk="lifecell"),
    Observation(sip_code="480", q850=18, trunk="other"),
    Observation(provider_code="2219", catalog="mango"),
    Observation(provider_code="200/486", catalog="callback"),
    Observation(provider_code="030", catalog="voipnow", method="GetChannels"),
]


def rate(fn, seconds: float) -> float:
    """Calls per second of `fn` over the key list, measured for about `seconds`."""
    cycle = itertools.cycle(KEYS)
    done, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(10000):
            fn(next(cycle))
        done += 10000
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    resolver = Resolver(load_catalogs(), bindings={"lifecell": "lifecell"})
    uncached = rate(resolver._resolve_uncached, args.seconds)
    cached = rate(resolver.resolve, args.seconds)
    print(f"uncached precedence walk: {uncached:12,.0f} resolutions/s (baseline)")
    print(f"resolve() repeated keys:  {cached:12,.0f} resolutions/s  ({cached / uncached:.1f}x baseline; "
          f"target >= 1,000,000/s: {'met' if cached >= 1e6 else 'NOT met'})")


if __name__ == "__main__":
    main()
