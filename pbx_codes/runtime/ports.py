"""What the composition roots wire, as Protocols: the listeners need something that resolves an observation and
something that publishes an annotation; the resolver and the annotation bus are those in `serve`, a test double or
the bench's recorder elsewhere."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from pbx_codes.model import Annotation, Observation


@runtime_checkable
class Resolves(Protocol):
    """`pbx_codes.resolve.Resolver` and anything shaped like it."""

    def resolve(self, observation: Observation) -> Annotation: ...


@runtime_checkable
class Publishes(Protocol):
    """`pbx_codes.sinks.bus.AnnotationBus` and anything shaped like it: takes each annotation, never blocks."""

    def publish(self, annotation: Annotation) -> object: ...


__all__ = ["Publishes", "Resolves"]
