"""Asterisk's AMI events -> one `Observation` per failed outgoing leg. All Asterisk hangup knowledge lives here.

What Asterisk 22 tells, and when (see the recorded transcripts):

- ``DialBegin`` links the caller's leg (A: ``Uniqueid``/``Channel``) to the dialed leg (B: ``DestUniqueid``/
  ``DestChannel``); every event also carries ``Linkedid``, the call's id (the A-leg's Uniqueid).
- The B-leg's ``HangupRequest`` is the first event with the cause: ``Cause`` (Q.850) and ``TechCause`` (the SIP
  code the carrier answered; only when the call did not end normally). ``Hangup`` repeats them.
- ``DialEnd`` on the A-leg carries ``DialStatus`` (BUSY, NOANSWER, CHANUNAVAIL, CONGESTION, CANCEL, ANSWER ...).
- The carrier's reason phrase is in no event: only ``HANGUPCAUSE(<B-leg>,tech)`` (``SIP 409 Not enough money``),
  readable by AMI ``Getvar`` on the A-leg while the A-leg lives. The observer cannot do I/O, so it queues a
  `PhraseFetch` (`take_fetches`) and waits for `on_phrase` (in a replay, the A-leg's own ``Hangup`` ends the wait;
  the live listener always answers, "" meaning Asterisk holds no status line for the leg).
- ``DialState`` (RINGING, PROGRESS) says the leg was alerted: a dial timeout after it is a ring timeout.
- How the leg ended (code, Q.850 cause, `Outcome`, certainty, who hung up) is decided by
  `pbx_codes.observers.asterisk_outcome.decide`, the table the FastAGI path uses too.
- When the caller cancels, the B-leg never gets a ``HangupRequest``; its ``Hangup`` says TechCause 500 (Asterisk's
  own) and ``HANGUPCAUSE(..,tech)`` holds the last provisional (``SIP 180 Ringing``). The leg is reported as SIP
  487 (what the CANCEL produces), hung up by the caller, and the provisional is never taken as the phrase.
- On the A-leg, ``TechCause`` is what Asterisk sent to the caller, not the carrier's answer: A-legs are not reported.
- An answered leg that ends normally (DialStatus ANSWER, cause 16) is not a failure: it is reported only with
  ``report_answered`` (the live listener), as ``200``/answered with who hung up.
- Each dialed leg of one calling channel is an attempt, numbered in order (failover).
- ``Local/`` channels are Asterisk's own plumbing (Originate, queues): the real dialed leg behind them is reported.
- The shipped predial step raises ``UserEvent: PbxCodesLeg`` with ``Catalog:`` on each dialed leg, before its
  ``DialBegin``: the catalog the hangup handler resolves that leg with (the calling channel's ``PBX_CODES_CATALOG``,
  else the trunk endpoint's ``set_var``), so the store and the CDR read the leg through the same catalog.
- The shipped dialplan's hangup handler on each dialed leg raises ``UserEvent: PbxCodesLegCause`` before the leg's
  ``Hangup``, with the leg's own last status line in base64 (``Tech64``). It is the leg's own copy: the one on the
  calling channel, which ``Getvar`` reads, was seen missing or still provisional on a busy PBX after Dial had
  ended. A leg that tells it needs no ``Getvar``; once one leg has told, no question is asked early (at the
  ``HangupRequest``) any more, only at the ``Hangup`` of a leg that did not tell (a call dialled another way).
"""
from __future__ import annotations

import base64
import re
from collections import OrderedDict
from collections.abc import Container, Iterable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from pbx_codes.model import Annotation, Observation, Side
from pbx_codes.observers.asterisk_outcome import LegFacts, LegVerdict, decide, parse_tech_cause
from pbx_codes.observers.causes import NORMAL_Q850
from pbx_codes.observers.channels import asterisk_trunk as trunk_of
from pbx_codes.protocols import safe_value, small_int
from pbx_codes.protocols.ami import AmiParser, Event, Response, header_needle, header_value

PBX = "asterisk"

#: The only events the observer reads; the AMI parser skips every other frame without decoding it.
WANTED_EVENTS = frozenset({"DialBegin", "DialState", "DialEnd", "HangupRequest", "SoftHangupRequest", "Hangup",
                           "UserEvent"})
#: The ``UserEvent`` name the shipped predial step raises on a dialed leg, and the form of a catalog id it may carry.
LEG_EVENT = "PbxCodesLeg"
#: The ``UserEvent`` the shipped dialplan's hangup handler raises on a dialed leg: its own last status line.
LEG_CAUSE_EVENT = "PbxCodesLegCause"
#: The longest status line taken from it (a SIP reason phrase is short; the rest is cut).
_LEG_CAUSE_MAX_BYTES = 1024
_CATALOG_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: DialState statuses that mean the dialed leg was alerted (18x): a dial timeout after them is a ring timeout.
RINGING_DIAL_STATES = frozenset({"RINGING", "PROGRESS"})

#: DialStatus values that mean the dialed leg did not connect.
FAILED_DIAL_STATUSES = frozenset({"BUSY", "NOANSWER", "CHANUNAVAIL", "CONGESTION", "CANCEL", "DONTCALL",
                                  "TORTURE", "INVALIDARGS"})
_CALLER, _CARRIER, _LOCAL = Side.CALLER, Side.CARRIER, Side.LOCAL  # an Enum member lookup is not free per event
#: `decide` is pure and a PBX meets the same few shapes over and over: its verdicts are kept, up to this many
#: (and only for phrases up to `_CACHED_PHRASE_MAX` characters, so the cache's memory stays small).
_VERDICTS_MAX = 4096
_CACHED_PHRASE_MAX = 256
# The headers the handlers read, as `header_value` searches them (made once, not per read; Final: the compiled
# build keeps them in C variables, not in the module's dict).
_CAUSE: Final = header_needle("Cause")
_CHANNEL: Final = header_needle("Channel")
_DEST_CHANNEL: Final = header_needle("DestChannel")
_DEST_LINKEDID: Final = header_needle("DestLinkedid")
_DEST_UNIQUEID: Final = header_needle("DestUniqueid")
_DIAL_STATUS: Final = header_needle("DialStatus")
_DIAL_STRING: Final = header_needle("DialString")
_LINKEDID: Final = header_needle("Linkedid")
_TECH_CAUSE: Final = header_needle("TechCause")
_TIMESTAMP: Final = header_needle("Timestamp")
_UNIQUEID: Final = header_needle("Uniqueid")
_USER_EVENT: Final = header_needle("UserEvent")
_CATALOG: Final = header_needle("Catalog")
_TECH64: Final = header_needle("Tech64")
#: Cause and TechCause as Asterisk writes them (plain decimal) -> their number, before `small_int`'s general rules.
_PLAIN_INTS: Final[dict[str | None, int]] = {str(number): number for number in range(1000)}


def _seconds(timestamp: str | None) -> float | None:
    """An event's ``Timestamp`` header as a float, None when missing or unreadable."""
    if not timestamp:
        return None
    try:
        return float(timestamp)
    except ValueError:
        return None


def _cause(text: str | None) -> int | None:
    """A ``Cause``/``TechCause`` header as `small_int` reads it."""
    number = _PLAIN_INTS.get(text)
    return number if number is not None else small_int(text)


def _number(dial_string: str | None) -> str | None:
    """``409@trunk`` or ``PJSIP/409@trunk`` -> ``409``."""
    if not dial_string:
        return None
    target = dial_string.split("&", 1)[0].split(",", 1)[0]
    target = target.rsplit("/", 1)[-1]
    number = target.split("@", 1)[0]
    if len(number) <= 64 and number.isascii() and number.isprintable() and " " not in number:
        return number or None  # nothing safe_value would change: skip its general path (once per dialed leg)
    return safe_value(number, 64) or None


@dataclass(frozen=True, slots=True)
class PhraseFetch:
    """A question for the live Asterisk: ``Getvar`` `variable` on `a_channel` (the A-leg, while it lives)."""

    a_channel: str
    b_channel: str
    variable: str
    #: Asked after the leg's DialEnd or Hangup: Dial has read the leg's last cause, so the answer is final.
    settled: bool = False


@dataclass(slots=True)
class _Leg:
    """What is known so far about one dialed leg."""

    uniqueid: str
    channel: str
    linkedid: str | None
    a_uniqueid: str | None
    a_channel: str | None
    number: str | None
    cause: int | None = None
    tech_cause: int | None = None
    requested: bool = False  # the B-leg's HangupRequest (the channel driver, i.e. the far end) was seen
    dial_status: str | None = None
    hangup_by: Side | None = None
    hung_up: bool = False
    timestamp: float | None = None
    fetch: str | None = None  # the pending Getvar variable
    fetch_done: bool = False
    tech_value: str | None = None
    #: An early answer was empty or a provisional: ask again, settled, at the leg's DialEnd or Hangup.
    refetch: bool = False
    rang: bool = False
    attempt: int | None = None
    started_at: float | None = None
    progress_at: float | None = None
    answered_at: float | None = None
    catalog: str | None = None  # the dialplan's catalog for this leg (the predial step's UserEvent)
    told: bool = False  # the leg's own hangup handler told its status line (PbxCodesLegCause): no Getvar needed


class AsteriskObserver:
    """The state machine from AMI events to Observations, without I/O.

    Feed `on_event` with the events of `WANTED_EVENTS` (others are ignored), `on_response` with AMI responses
    (a ``Getvar`` answer is recognised by its ``Variable`` header), or `on_phrase` directly; each returns the
    observations it completed. `take_fetches` hands over the ``Getvar`` questions to ask. Each failed leg is
    reported exactly once.
    """

    def __init__(self, *, catalog: str | None = None, fetch_phrases: bool = True, max_legs: int = 10000,
                 report_answered: bool = False, fetches_always_answered: bool = False,
                 known_catalogs: Container[str] | None = None) -> None:
        self.catalog = catalog
        # With the catalogs known, a leg's catalog is chosen as the FastAGI path chooses it: the dialplan's (the
        # predial step's UserEvent), else the trunk's name when it names a catalog, else `catalog`; the resolver's
        # bindings and default come after. Without them (a replay), the dialplan's, else `catalog`.
        self.known_catalogs = known_catalogs
        # The live listener reports answered legs too (as SIP 200), so failure rates and alert shares have their
        # denominator; `replay` reports failed legs only.
        self.report_answered = report_answered
        self.fetch_phrases = fetch_phrases
        # The live listener answers every fetch (with None when the A-leg is gone), and its answer may come after
        # the A-leg's Hangup; a capture holds only the answers it recorded, so replay stops waiting at that Hangup.
        self.fetches_always_answered = fetches_always_answered
        self.max_legs = max_legs
        self._legs: OrderedDict[str, _Leg] = OrderedDict()
        self._by_a: dict[str, set[str]] = {}
        self._fetches: list[PhraseFetch] = []
        self._waiting: dict[str, str] = {}  # Getvar variable -> B uniqueid
        self._attempts: OrderedDict[str, int] = OrderedDict()  # A uniqueid -> Dials begun (failover attempts)
        self._leg_catalogs: OrderedDict[str, str] = OrderedDict()  # B uniqueid -> catalog, until its DialBegin
        self.evicted = 0
        self._verdicts: dict[tuple[Any, ...], LegVerdict] = {}
        # A dialed leg has told its own status line (the shipped dialplan): the others will too, so no early Getvar.
        self.legs_tell = False
        self.handlers = {
            "DialBegin": self._dial_begin,
            "DialState": self._dial_state,
            "DialEnd": self._dial_end,
            "HangupRequest": self._hangup_request,
            "SoftHangupRequest": self._soft_hangup_request,
            "Hangup": self._hangup,
            "UserEvent": self._user_event,
        }

    # -- inputs -------------------------------------------------------------------------------------------------
    def on_event(self, event: Event) -> list[Observation]:
        handler = self.handlers.get(event.name)
        if handler is None:
            return []
        return handler(event)

    def on_response(self, response: Response) -> list[Observation]:
        """A ``Getvar`` answer seen on the wire (replay): ``Variable``/``Value`` name the question it answers."""
        variable = response.get("Variable")
        if variable is None or variable not in self._waiting:
            return []
        return self.on_phrase(variable, response.get("Value") if response.ok else None)

    def on_phrase(self, variable: str, value: str | None, final: bool = True) -> list[Observation]:
        """The answer (or None: error, timeout, channel gone) to a `PhraseFetch`.

        ``final=False``: an early answer (asked at the B-leg's HangupRequest) that was empty or a provisional, since
        the calling channel's Dial had not yet read the leg's final cause. It is dropped, and the question is
        asked again, settled, once the leg's DialEnd or Hangup shows Dial has read it: no timer decides when.
        """
        uid = self._waiting.get(variable)
        leg = self._legs.get(uid) if uid else None
        if leg is None or leg.fetch_done:
            self._waiting.pop(variable, None)
            return []
        if not final:
            # Not kept: an early "" or provisional says nothing yet. Should the A-leg be gone before the settled
            # answer, the leg is told by its events alone (code from TechCause), as with no answer at all.
            leg.refetch = True
            if leg.dial_status is not None or leg.hung_up:
                return self._ask_again(leg)
            return []
        self._waiting.pop(variable, None)
        leg.fetch_done = True
        leg.tech_value = value
        return self._maybe_emit(leg)

    def take_fetches(self) -> list[PhraseFetch]:
        """The Getvar questions queued since the last call."""
        fetches, self._fetches = self._fetches, []
        return fetches

    def flush(self) -> list[Observation]:
        """End of input: report every failed leg that has hung up, with whatever is known."""
        out: list[Observation] = []
        for leg in list(self._legs.values()):
            if leg.hung_up:
                leg.fetch_done = True
                out.extend(self._maybe_emit(leg))
        self._waiting.clear()
        return out

    @property
    def pending_legs(self) -> int:
        return len(self._legs)

    # -- event handlers -----------------------------------------------------------------------------------------
    # Each reads its headers with `header_value` on the frame's text: about twenty reads per dialed leg make the
    # bulk of the observer's time, and this is `Event.get` less the method call and the search string per read.
    def _dial_begin(self, event: Event) -> list[Observation]:
        raw, legs = event.raw, self._legs
        uid = header_value(raw, _DEST_UNIQUEID)
        if not uid or uid in legs:
            return []
        channel = header_value(raw, _DEST_CHANNEL)
        if not channel or channel.startswith("Local/"):
            return []
        a_uid = header_value(raw, _UNIQUEID) or None
        leg = _Leg(uid, channel, header_value(raw, _DEST_LINKEDID) or header_value(raw, _LINKEDID), a_uid,
                   header_value(raw, _CHANNEL) or None, _number(header_value(raw, _DIAL_STRING)),
                   started_at=_seconds(header_value(raw, _TIMESTAMP)),
                   catalog=self._leg_catalogs.pop(uid, None) if self._leg_catalogs else None)
        legs[uid] = leg
        if a_uid:
            siblings = self._by_a.get(a_uid)
            if siblings is None:
                self._by_a[a_uid] = {uid}
            else:
                siblings.add(uid)
            attempts = self._attempts
            leg.attempt = attempt = attempts.pop(a_uid, 0) + 1
            attempts[a_uid] = attempt
            if len(attempts) > self.max_legs:
                attempts.popitem(last=False)
        if len(legs) > self.max_legs:
            _, old = legs.popitem(last=False)
            self._forget(old)
            self.evicted += 1
        return []

    def _user_event(self, event: Event) -> list[Observation]:
        """The predial step's ``PbxCodesLeg`` on a dialed leg: the catalog the dialplan chose for it."""
        raw = event.raw
        name = header_value(raw, _USER_EVENT)
        if name == LEG_CAUSE_EVENT:
            return self._leg_cause(event)
        if name != LEG_EVENT:
            return []
        uid = header_value(raw, _UNIQUEID) or ""
        catalog = (header_value(raw, _CATALOG) or "").strip()
        if not uid or not _CATALOG_ID.fullmatch(catalog):
            return []
        leg = self._legs.get(uid)
        if leg is not None:
            leg.catalog = catalog
        else:  # raised before the leg's DialBegin
            self._leg_catalogs[uid] = catalog
            if len(self._leg_catalogs) > self.max_legs:
                self._leg_catalogs.popitem(last=False)
        return []

    def _leg_cause(self, event: Event) -> list[Observation]:
        """``PbxCodesLegCause`` from a dialed leg's hangup handler: the leg's own last status line ("" = none)."""
        raw = event.raw
        leg = self._legs.get(header_value(raw, _UNIQUEID) or "")
        if leg is None:
            return []
        try:
            text = base64.b64decode(header_value(raw, _TECH64) or "", validate=True).decode("utf-8", "replace")
        except ValueError:  # not base64: this is not the shipped handler speaking; Getvar stays the way
            return []
        self.legs_tell = True
        leg.told = True
        leg.tech_value = safe_value(text, _LEG_CAUSE_MAX_BYTES)
        leg.fetch_done = True
        leg.refetch = False
        if leg.fetch is not None:
            self._waiting.pop(leg.fetch, None)
        return self._maybe_emit(leg)

    def _dial_state(self, event: Event) -> list[Observation]:
        raw = event.raw
        leg = self._legs.get(header_value(raw, _DEST_UNIQUEID) or "")
        if leg is not None:
            status = header_value(raw, _DIAL_STATUS)
            if status in RINGING_DIAL_STATES or (status or "").strip().upper() in RINGING_DIAL_STATES:
                leg.rang = True
                leg.progress_at = leg.progress_at or _seconds(header_value(raw, _TIMESTAMP))
        return []

    def _dial_end(self, event: Event) -> list[Observation]:
        raw = event.raw
        leg = self._legs.get(header_value(raw, _DEST_UNIQUEID) or "")
        if leg is not None:
            leg.dial_status = (header_value(raw, _DIAL_STATUS) or "").strip().upper() or None
            if leg.dial_status == "ANSWER":
                leg.answered_at = _seconds(header_value(raw, _TIMESTAMP))
            if leg.refetch:
                return self._ask_again(leg)
        return []

    def _hangup_request(self, event: Event) -> list[Observation]:
        raw = event.raw
        uid = header_value(raw, _UNIQUEID) or ""
        leg = self._legs.get(uid)
        if leg is None:
            # The caller hanging up first makes it the one who ended every dialed leg still up.
            for b_uid in self._by_a.get(uid, ()):
                b_leg = self._legs.get(b_uid)
                if b_leg is not None and not b_leg.hung_up and b_leg.hangup_by is None:
                    b_leg.hangup_by = _CALLER
            return []
        if not leg.requested:
            leg.requested = True
            leg.cause = _cause(header_value(raw, _CAUSE))
            leg.tech_cause = _cause(header_value(raw, _TECH_CAUSE))
            if leg.hangup_by is None:
                leg.hangup_by = _CARRIER
            if not self.legs_tell:
                self._ask_phrase(leg)
        return []

    def _soft_hangup_request(self, event: Event) -> list[Observation]:
        leg = self._legs.get(header_value(event.raw, _UNIQUEID) or "")
        if leg is not None and leg.hangup_by is None:
            leg.hangup_by = _LOCAL
        return []

    def _hangup(self, event: Event) -> list[Observation]:
        raw = event.raw
        uid = header_value(raw, _UNIQUEID) or ""
        leg = self._legs.get(uid)
        out: list[Observation] = []
        if leg is not None:
            leg.hung_up = True
            leg.timestamp = _seconds(header_value(raw, _TIMESTAMP))
            if leg.cause is None:
                leg.cause = _cause(header_value(raw, _CAUSE))
            if not leg.requested and leg.hangup_by is not _CALLER and leg.dial_status != "CANCEL":
                leg.tech_cause = _cause(header_value(raw, _TECH_CAUSE))
            if not self._failed(leg):
                self._forget(leg)
                if self.report_answered and leg.dial_status == "ANSWER":
                    out.append(self._observation(leg, answered=True))
                return out
            if leg.fetch is None and leg.dial_status != "CANCEL" and leg.hangup_by is not _CALLER:
                self._ask_phrase(leg)
            if leg.refetch:
                out.extend(self._ask_again(leg))
            else:
                out.extend(self._maybe_emit(leg))
        # The A-leg is gone: a Getvar on it can no longer succeed, so stop waiting for its B-legs' phrases.
        self._attempts.pop(uid, None)
        b_uids = self._by_a.pop(uid, None)
        if not b_uids:
            return out
        for b_uid in list(b_uids):
            b_leg = self._legs.get(b_uid)
            if b_leg is None:
                continue
            b_leg.a_channel = None
            if b_leg.fetch is not None and not b_leg.fetch_done and not self.fetches_always_answered:
                self._waiting.pop(b_leg.fetch, None)
                b_leg.fetch_done = True
                out.extend(self._maybe_emit(b_leg))
        return out

    # -- decisions ----------------------------------------------------------------------------------------------
    def _ask_phrase(self, leg: _Leg) -> None:
        if not self.fetch_phrases or not leg.a_channel or leg.fetch is not None or leg.told:
            return
        variable = f"HANGUPCAUSE({leg.channel},tech)"
        leg.fetch = variable
        self._waiting[variable] = leg.uniqueid
        self._fetches.append(PhraseFetch(leg.a_channel, leg.channel, variable,
                                          settled=leg.hung_up or leg.dial_status is not None))

    def _ask_again(self, leg: _Leg) -> list[Observation]:
        """The settled question after an early, unfinished answer; with the A-leg gone, the early answer stands."""
        leg.refetch = False
        if leg.fetch is None:
            return []
        if not leg.a_channel:
            self._waiting.pop(leg.fetch, None)
            leg.fetch_done = True
            return self._maybe_emit(leg)
        self._fetches.append(PhraseFetch(leg.a_channel, leg.channel, leg.fetch, settled=True))
        return []

    @staticmethod
    def _failed(leg: _Leg) -> bool:
        if leg.dial_status == "ANSWER":
            return False
        if leg.tech_cause is not None and leg.tech_cause >= 300:
            return True
        if leg.dial_status in FAILED_DIAL_STATUSES:
            return True
        return leg.cause is not None and leg.cause not in NORMAL_Q850

    def _maybe_emit(self, leg: _Leg) -> list[Observation]:
        if not leg.hung_up or (leg.fetch is not None and not leg.fetch_done):
            return []
        self._forget(leg)
        return [self._observation(leg)]

    def _forget(self, leg: _Leg) -> None:
        self._legs.pop(leg.uniqueid, None)
        if leg.fetch is not None:
            self._waiting.pop(leg.fetch, None)
        if leg.a_uniqueid and leg.a_uniqueid in self._by_a:
            siblings = self._by_a[leg.a_uniqueid]
            siblings.discard(leg.uniqueid)
            if not siblings:
                del self._by_a[leg.a_uniqueid]

    def _catalog_of(self, leg: _Leg, trunk: str | None) -> str | None:
        known = self.known_catalogs
        if known is None:
            return leg.catalog or self.catalog
        return next((c for c in (leg.catalog, trunk, self.catalog) if c and c in known), None)

    def _observation(self, leg: _Leg, answered: bool = False) -> Observation:
        trunk = trunk_of(leg.channel)
        status = leg.dial_status
        if not answered and leg.hangup_by is _CALLER:
            status = "CANCEL"  # the caller hung up before DialEnd said so
        # The phrase is known ("" = Asterisk holds none for the leg) only when the Getvar was answered.
        tech = leg.tech_value if leg.fetch_done and leg.tech_value is not None else None
        key = (status, tech, leg.rang, leg.cause, leg.tech_cause, leg.hangup_by)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = decide(LegFacts(status, tech, has_leg=True, rang=leg.rang, cause=leg.cause,
                                      tech_cause=leg.tech_cause, hangup_by=leg.hangup_by))
            if tech is None or len(tech) <= _CACHED_PHRASE_MAX:
                if len(self._verdicts) >= _VERDICTS_MAX:
                    self._verdicts.clear()
                self._verdicts[key] = verdict
        return Observation(
            sip_code=verdict.code, phrase=verdict.phrase, q850=verdict.q850, catalog=self._catalog_of(leg, trunk),
            trunk=trunk, hangup_by=verdict.hangup_by, pbx=PBX, call_id=leg.linkedid,
            leg_id=leg.uniqueid, channel=leg.channel, number=leg.number, dial_status=leg.dial_status,
            timestamp=leg.timestamp, outcome=verdict.outcome, certain=verdict.certain, attempt=leg.attempt,
            started_at=leg.started_at, progress_at=leg.progress_at, answered_at=leg.answered_at,
            ended_at=leg.timestamp,
        )


class SupportsResolve(Protocol):
    def resolve(self, obs: Observation) -> Any: ...


def observe_stream(data: bytes, *, catalog: str | None = None, chunks: Iterable[bytes] | None = None
                   ) -> list[Observation]:
    """The observations in a raw AMI capture, by the listener's own path (parser with its event filter, then the
    observer; Getvar answers found in the capture answer the observer's questions)."""
    parser = AmiParser(WANTED_EVENTS)
    observer = AsteriskObserver(catalog=catalog)
    out: list[Observation] = []
    for chunk in (chunks if chunks is not None else (data,)):
        for message in parser.feed(chunk):
            if isinstance(message, Event):
                out.extend(observer.on_event(message))
                observer.take_fetches()  # in a capture, the answers (if asked) are already in the stream
            elif isinstance(message, Response):
                out.extend(observer.on_response(message))
    out.extend(observer.flush())
    return out


def replay(data: bytes, resolver: SupportsResolve, catalog: str | None = None) -> list[Annotation]:
    """Annotations for every failed leg in a raw AMI capture (``pbx-codes replay --pbx asterisk FILE``)."""
    return [resolver.resolve(obs) for obs in observe_stream(data, catalog=catalog)]


__all__ = [
    "AsteriskObserver", "FAILED_DIAL_STATUSES", "PhraseFetch", "WANTED_EVENTS", "observe_stream",
    "parse_tech_cause", "replay", "trunk_of",
]
