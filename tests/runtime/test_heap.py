from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from pbx_codes.runtime import heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_settle_moves_the_live_start_up_objects_out_of_the_collected_heap(restored_gc: None) -> None:
    catalog_like = [[str(i), f"phrase {i}"] for i in range(5000)]  # lists: always tracked by the collector
    assert gc.is_tracked(catalog_like[0])
    frozen = heap.settle()
    assert frozen == gc.get_freeze_count() >= len(catalog_like)
    walked = {id(o) for o in gc.get_objects()}  # what a collection walks: the frozen objects are not in it
    assert not any(id(d) in walked for d in catalog_like)


def test_settle_collects_start_up_garbage_before_freezing_it(restored_gc: None) -> None:
    class Node:
        def __init__(self) -> None:
            self.other: Node | None = None

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle only the collector can free
    gone = weakref.ref(a)
    del a, b
    heap.settle()
    assert gone() is None
