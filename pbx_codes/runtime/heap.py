"""The garbage collector and a long-running `serve` process.

The catalogs, the resolver's tables and the parts built at start-up live as long as the process. Left in the
collected heap, every full (generation 2) collection walks them all again: on the FastAGI path those were pauses of
tens of milliseconds in the middle of a call's sessions. Once they are built, `settle` moves them to the permanent
generation (`gc.freeze`), which collections skip. The thresholds stay CPython's: a larger young generation was
measured to make each collection's pause longer, not rarer pauses shorter.
"""
from __future__ import annotations

import gc


def settle() -> int:
    """Collect what start-up left behind, then freeze every object still alive; returns how many are frozen.

    Call it once the long-lived objects exist (after the catalogs load and the parts are built). Frozen objects are
    never collected: cycles among them that die later stay in memory, which start-up state does not do.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


__all__ = ["settle"]
