"""The in-process fan-out of annotations to sinks (write-back, store, console, metrics, alerts).

A listener must never wait on a sink: `publish` only puts into each subscriber's bounded queue, and a full queue
drops its oldest item and counts the drop, so a stalled console costs memory up to a bound and nothing more.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, fields
from operator import attrgetter

from pbx_codes.model import Annotation, Observation

_OBSERVATION_FIELDS = tuple(f.name for f in fields(Observation))
_INSTANCE_AT = _OBSERVATION_FIELDS.index("instance")
_observation_values = attrgetter(*_OBSERVATION_FIELDS)


def with_instance(annotation: Annotation, instance: str) -> Annotation:
    """The annotation with its observation's `instance` set: `dataclasses.replace` twice, at half the cost (it runs
    for every hangup a named agent publishes)."""
    values = list(_observation_values(annotation.observation))
    values[_INSTANCE_AT] = instance
    return Annotation(annotation.resolution, Observation(*values))


@dataclass(slots=True)
class Subscription:
    """One sink's queue and how many annotations it lost to being slow."""

    name: str
    queue: asyncio.Queue[Annotation]
    dropped: int = 0


@dataclass(slots=True)
class AnnotationBus:
    """Fan-out of annotations; one per running program, passed explicitly (no global)."""

    subscriptions: list[Subscription] = field(default_factory=list)
    published: int = 0
    #: The agent's name (`instance`): stamped on each annotation that does not name one, so every sink (store,
    #: console, metrics, alerts) sees which agent of a fleet saw the leg.
    instance: str | None = None

    def subscribe(self, name: str, maxsize: int = 10000) -> Subscription:
        """A new bounded queue that receives every annotation published from now on."""
        sub = Subscription(name, asyncio.Queue(maxsize))
        self.subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self.subscriptions:
            self.subscriptions.remove(sub)

    def publish(self, annotation: Annotation) -> None:
        """Hand an annotation to every subscriber without waiting."""
        self.published += 1
        if self.instance and annotation.observation.instance is None:
            annotation = with_instance(annotation, self.instance)
        for sub in self.subscriptions:
            queue = sub.queue
            if queue.full():
                queue.get_nowait()
                sub.dropped += 1
            queue.put_nowait(annotation)
