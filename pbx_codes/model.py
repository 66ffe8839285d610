"""The one record model both PBXs share: an Observation in, an Annotation out.

Asterisk and FreeSWITCH report a failed leg in very different words; observers translate those words into an
``Observation`` so that the resolver, the write-back, the store and the console never need to know which PBX spoke.
"""
from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, TypeVar

_T = TypeVar("_T")


class Category(str, Enum):
    """Normalized reason category: the field a machine counts."""

    OK = "ok"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    DECLINED = "declined"
    UNAVAILABLE = "unavailable"
    INVALID_NUMBER = "invalid_number"
    CANCELLED = "cancelled"
    AUTH = "auth"
    FORBIDDEN = "forbidden"
    BILLING = "billing"
    CAPACITY = "capacity"
    MEDIA = "media"
    NETWORK = "network"
    CONFIG = "config"
    REQUEST_ERROR = "request_error"
    NOT_FOUND = "not_found"
    PENDING = "pending"
    UNKNOWN = "unknown"


class Retry(str, Enum):
    """What a dialplan should do next: ``failover`` means try another route now."""

    NO = "no"
    LATER = "later"
    FAILOVER = "failover"


class Side(str, Enum):
    """A party of the call: who is at fault, or who ended it."""

    CALLER = "caller"
    CALLEE = "callee"
    CARRIER = "carrier"
    LOCAL = "local"
    UNKNOWN = "unknown"


class Outcome(str, Enum):
    """How a leg ended, in the terms both PBXs share. The observers decide it; the resolver lets it refine what the
    catalogs say about the code (see ``pbx_codes.resolve.outcome``).

    The distinction matters because a PBX reports several of these with the same code: Asterisk and FreeSWITCH
    both make up a ``408``/``503`` themselves when a trunk never answers, and an unanswered call that rang looks
    like an ordinary end of call.
    """

    CARRIER_FINAL = "carrier_final"  # the carrier's own final response (code and phrase)
    LOCAL_RESPONSE = "local_response"  # a response the PBX made itself, or a timer: nothing came from the carrier
    UNREACHABLE = "unreachable"  # unreachable or unavailable before any INVITE (qualify, no route, gateway down)
    PBX_LIMIT = "pbx_limit"  # a limit of the PBX's own (sessions per second, channel limits)
    RING_TIMEOUT = "ring_timeout"  # the callee was alerted (18x) and the dial timer ended the attempt
    CALLER_CANCEL = "caller_cancel"  # the caller gave up before an answer
    ANSWERED = "answered"  # answered; who hung up is in ``hangup_by``


LANGS: tuple[str, ...] = ("uk", "ru", "en")


def _direct_init(cls: type[_T]) -> type[_T]:
    """Give a frozen dataclass without slots an ``__init__`` that stores each field straight into the instance's
    ``__dict__``: the one `dataclass` writes for a frozen class calls ``object.__setattr__`` per field, which for
    `Observation`'s 24 fields is most of the cost of making one (≈4 µs against ≈1.4 µs measured), and the observers
    make one per leg. Same parameters, order and defaults, same instance; assignment still raises
    ``FrozenInstanceError``. Only for fields with plain defaults and no ``__post_init__`` (checked here)."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    names = [f.name for f in fields]
    if (hasattr(cls, "__slots__") or hasattr(cls, "__post_init__") or list(inspect.signature(cls).parameters) != names
            or any(f.default is dataclasses.MISSING for f in fields)):
        raise TypeError(f"{cls.__name__}: direct init needs a dataclass without slots, only plain defaults")
    params = ", ".join(f"{name}=__defaults[{i}]" for i, name in enumerate(names))
    body = "\n".join(f"    d[{name!r}] = {name}" for name in names)
    namespace: dict[str, Any] = {"__defaults": tuple(f.default for f in fields)}
    exec(f"def __init__(self, {params}):\n    d = self.__dict__\n{body}\n", namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__annotations__ = dict(cls.__dict__["__init__"].__annotations__)
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


@_direct_init
@dataclass(frozen=True)
class Observation:
    """What a PBX (or a user) saw about one leg at hangup. Every field is optional: PBXs report unevenly."""

    sip_code: str | None = None
    phrase: str | None = None
    q850: int | None = None
    provider_code: str | None = None
    method: str | None = None
    catalog: str | None = None
    trunk: str | None = None
    hangup_by: Side | None = None
    pbx: str = ""
    call_id: str | None = None
    leg_id: str | None = None
    channel: str | None = None
    number: str | None = None
    dial_status: str | None = None
    timestamp: float | None = None
    #: How the leg ended (None: the observer could not tell; the code alone decides).
    outcome: Outcome | None = None
    #: False when the PBX gives no way to tell its own response from the carrier's: the annotation is not exact.
    certain: bool = True
    #: 1-based position of this attempt among the call's attempts (failover), when the PBX tells.
    attempt: int | None = None
    #: The PBX's own name for the cause when it is not a Q.850 cause (FreeSWITCH ``UNWANTED`` = 819).
    pbx_cause: str | None = None
    #: Leg timings (epoch seconds): attempt (dial) start, first ringing or progress, answer, end.
    started_at: float | None = None
    progress_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    #: The agent (`instance` in pbx-codes.toml) that saw the leg; the bus of a named agent fills it in.
    instance: str | None = None


@dataclass(frozen=True, slots=True)
class Resolution:
    """What the catalogs say about one observed cause. Shared by every leg that saw the same cause, so it is cached."""

    catalog: str
    code: str | None
    phrase: str | None
    matched: str | None
    exact: bool
    match_kind: str  # phrase | code | class | q850 | none
    category: Category
    retry: Retry
    fault: Side | None
    sip: str | None
    q850: int | None
    texts: Mapping[str, str] = field(default_factory=dict)
    original_lang: str | None = None


@dataclass(frozen=True, slots=True)
class Annotation:
    """The answer for one leg: the catalogs' resolution plus which leg, call and PBX it belongs to.

    Two fields only, so that building one per hangup costs next to nothing; the resolution's fields read through.
    """

    resolution: Resolution
    observation: Observation = field(default_factory=Observation)

    catalog = property(lambda self: self.resolution.catalog)
    code = property(lambda self: self.resolution.code)
    phrase = property(lambda self: self.resolution.phrase)
    matched = property(lambda self: self.resolution.matched)
    exact = property(lambda self: self.resolution.exact and self.observation.certain)
    match_kind = property(lambda self: self.resolution.match_kind)
    category = property(lambda self: self.resolution.category)
    retry = property(lambda self: self.resolution.retry)
    fault = property(lambda self: self.resolution.fault)
    sip = property(lambda self: self.resolution.sip)
    q850 = property(lambda self: self.resolution.q850)
    texts = property(lambda self: self.resolution.texts)
    original_lang = property(lambda self: self.resolution.original_lang)

    @property
    def hangup_by(self) -> Side:
        """Who ended the leg, as the PBX reported it."""
        return self.observation.hangup_by or Side.UNKNOWN

    def text(self, lang: str) -> str:
        """The reason in ``lang``, falling back to English, then to any text there is."""
        texts = self.resolution.texts
        return texts.get(lang) or texts.get("en") or next(iter(texts.values()), "")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: enums as their values, the observation's ids flattened in."""
        obs, res = self.observation, self.resolution
        return {
            "pbx": obs.pbx or None,
            "instance": obs.instance,
            "uniqueid": obs.leg_id,
            "linkedid": obs.call_id,
            "channel": obs.channel,
            "trunk": obs.trunk,
            "number": obs.number,
            "catalog": res.catalog,
            "code": res.code,
            "phrase": res.phrase,
            "provider_code": obs.provider_code,
            "method": obs.method,
            "matched": res.matched,
            "exact": res.exact and obs.certain,
            "match_kind": res.match_kind,
            "category": res.category.value,
            "retry": res.retry.value,
            "fault": res.fault.value if res.fault else None,
            "hangup_by": self.hangup_by.value,
            "sip": res.sip,
            "q850": res.q850,
            "observed_q850": obs.q850,
            "dial_status": obs.dial_status,
            "outcome": obs.outcome.value if obs.outcome else None,
            "attempt": obs.attempt,
            "pbx_cause": obs.pbx_cause,
            "texts": dict(res.texts),
            "original_lang": res.original_lang,
            "timestamp": obs.timestamp,
            "started_at": obs.started_at,
            "progress_at": obs.progress_at,
            "answered_at": obs.answered_at,
            "ended_at": obs.ended_at,
        }


def observation_fields() -> tuple[str, ...]:
    """Names of Observation's fields (for config and CLI mappings)."""
    return tuple(Observation.__dataclass_fields__)


__all__ = ["Annotation", "Category", "LANGS", "Observation", "Outcome", "Resolution", "Retry", "Side", "asdict",
           "observation_fields"]
