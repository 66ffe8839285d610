"""The bus never makes a listener wait: a slow subscriber loses its oldest items, counted, and nobody else does."""
from __future__ import annotations

import pytest

from pbx_codes.model import Annotation, Category, Observation, Resolution, Retry
from pbx_codes.sinks.bus import AnnotationBus


def ann(i: int) -> Annotation:
    res = Resolution("sip", "486", None, "486", True, "code", Category.BUSY, Retry.LATER, None, "486", 17, {"en": "x"})
    return Annotation(res, Observation(leg_id=str(i)))


@pytest.mark.asyncio
async def test_every_subscriber_gets_every_annotation() -> None:
    bus = AnnotationBus()
    a, b = bus.subscribe("a"), bus.subscribe("b")
    for i in range(3):
        bus.publish(ann(i))
    assert [a.queue.get_nowait().observation.leg_id for _ in range(3)] == ["0", "1", "2"]
    assert b.queue.qsize() == 3 and bus.published == 3


@pytest.mark.asyncio
async def test_full_subscriber_drops_oldest_and_counts_it() -> None:
    bus = AnnotationBus()
    slow, fast = bus.subscribe("slow", maxsize=2), bus.subscribe("fast")
    for i in range(5):
        bus.publish(ann(i))
    assert slow.dropped == 3 and [slow.queue.get_nowait().observation.leg_id for _ in range(2)] == ["3", "4"]
    assert fast.dropped == 0 and fast.queue.qsize() == 5
    bus.unsubscribe(slow)
    bus.publish(ann(9))
    assert slow.queue.qsize() == 0
