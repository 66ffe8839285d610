"""FreeSWITCH channel variables -> Observation: every piece of knowledge about where FreeSWITCH keeps a leg's cause.

One function, `observation_from_variables`, reads a mapping of channel variables (names without the ``variable_``
prefix, as a dialplan or a Lua hook sees them). Both the ESL observer (which first turns an event's headers into
that mapping with `variables_from_event`) and the hangup-hook endpoint call it, so the two can never disagree.

What a real FreeSWITCH reports (see the recorded captures):
- the leg that received the final response (B, towards the carrier): ``sip_invite_failure_status``/``_phrase``
  (the carrier's exact words), ``proto_specific_hangup_cause`` (``sip:409``), ``sip_term_status``, ``sip_reason``
  (a Q.850 ``Reason`` header), ``sip_hangup_disposition`` (``recv_refuse`` ...);
- the bridging leg (A) gets copies: ``last_bridge_proto_specific_hangup_cause``, ``last_bridge_hangup_cause``,
  ``sip_invite_failure_*``, ``sip_hangup_phrase``; A's own hangup cause can differ (480 -> A ends NORMAL_CLEARING);
- ``sip_term_status=200`` with ``recv_bye`` is the BYE's status: a normal clearing, not a failure.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any, Callable, Iterable, Mapping

from pbx_codes.model import Annotation, Observation, Side
from pbx_codes.protocols import small_int
from pbx_codes.protocols.esl import Event, EslParser

PBX = "freeswitch"

# FreeSWITCH's cause names (switch_types.h, switch_channel.c) -> Q.850 numbers, for events that carry only a name.
HANGUP_CAUSE_Q850: Mapping[str, int] = {
    "UNSPECIFIED": 0, "UNALLOCATED_NUMBER": 1, "NO_ROUTE_TRANSIT_NET": 2, "NO_ROUTE_DESTINATION": 3,
    "CHANNEL_UNACCEPTABLE": 6, "CALL_AWARDED_DELIVERED": 7, "NORMAL_CLEARING": 16, "USER_BUSY": 17,
    "NO_USER_RESPONSE": 18, "NO_ANSWER": 19, "SUBSCRIBER_ABSENT": 20, "CALL_REJECTED": 21, "NUMBER_CHANGED": 22,
    "REDIRECTION_TO_NEW_DESTINATION": 23, "EXCHANGE_ROUTING_ERROR": 25, "DESTINATION_OUT_OF_ORDER": 27,
    "INVALID_NUMBER_FORMAT": 28, "FACILITY_REJECTED": 29, "RESPONSE_TO_STATUS_ENQUIRY": 30,
    "NORMAL_UNSPECIFIED": 31, "NORMAL_CIRCUIT_CONGESTION": 34, "NETWORK_OUT_OF_ORDER": 38,
    "NORMAL_TEMPORARY_FAILURE": 41, "SWITCH_CONGESTION": 42, "ACCESS_INFO_DISCARDED": 43,
    "REQUESTED_CHAN_UNAVAIL": 44, "PRE_EMPTED": 45, "FACILITY_NOT_SUBSCRIBED": 50, "OUTGOING_CALL_BARRED": 52,
    "INCOMING_CALL_BARRED": 54, "BEARERCAPABILITY_NOTAUTH": 57, "BEARERCAPABILITY_NOTAVAIL": 58,
    "SERVICE_UNAVAILABLE": 63, "BEARERCAPABILITY_NOTIMPL": 65, "CHAN_NOT_IMPLEMENTED": 66,
    "FACILITY_NOT_IMPLEMENTED": 69, "SERVICE_NOT_IMPLEMENTED": 79, "INVALID_CALL_REFERENCE": 81,
    "INCOMPATIBLE_DESTINATION": 88, "INVALID_MSG_UNSPECIFIED": 95, "MANDATORY_IE_MISSING": 96,
    "MESSAGE_TYPE_NONEXIST": 97, "WRONG_MESSAGE": 98, "IE_NONEXIST": 99, "INVALID_IE_CONTENTS": 100,
    "WRONG_CALL_STATE": 101, "RECOVERY_ON_TIMER_EXPIRE": 102, "MANDATORY_IE_LENGTH_ERROR": 103,
    "PROTOCOL_ERROR": 111, "INTERWORKING": 127, "SUCCESS": 142, "ORIGINATOR_CANCEL": 487, "CRASH": 500,
    "SYSTEM_SHUTDOWN": 501, "LOSE_RACE": 502, "MANAGER_REQUEST": 503, "BLIND_TRANSFER": 600,
    "ATTENDED_TRANSFER": 601, "ALLOTTED_TIMEOUT": 602, "USER_CHALLENGE": 603, "MEDIA_TIMEOUT": 604,
    "PICKED_OFF": 605, "USER_NOT_REGISTERED": 606, "PROGRESS_TIMEOUT": 607, "GATEWAY_DOWN": 609,
}

# Causes that mean "the call ended as calls end": no failure to explain unless a SIP code says otherwise.
NORMAL_CAUSES = frozenset({"", "NONE", "NORMAL_CLEARING", "SUCCESS"})

# The variables the hook script sends and the endpoint accepts (a whitelist: nothing else is read).
HOOK_VARIABLES: tuple[str, ...] = (
    "uuid", "call_uuid", "signal_bond", "originator", "channel_name", "direction", "destination_number",
    "hangup_cause", "hangup_cause_q850", "sip_term_status", "sip_term_cause", "sip_invite_failure_status",
    "sip_invite_failure_phrase", "sip_hangup_phrase", "sip_reason", "proto_specific_hangup_cause",
    "last_bridge_proto_specific_hangup_cause", "last_bridge_hangup_cause", "originate_failed_cause",
    "sip_hangup_disposition", "sip_gateway_name", "sofia_profile_name", "pbx_codes_catalog", "pbx_codes_trunk",
    "DIALSTATUS", "end_epoch",
)

# Event headers that are not variables but say the same thing; the variable wins when both are present.
_EVENT_FIELDS = {
    "Unique-ID": "uuid", "Channel-Name": "channel_name", "Hangup-Cause": "hangup_cause",
    "Call-Direction": "direction", "Caller-Destination-Number": "destination_number",
    "Other-Leg-Unique-ID": "other_leg_unique_id", "Channel-Call-UUID": "channel_call_uuid",
}

_SIP_CODE = re.compile(r"^\s*(?:sip:)?([1-6]\d\d)\s*$", re.IGNORECASE)
_REASON_CAUSE = re.compile(r"Q\.850\s*;\s*cause\s*=\s*(\d{1,3})", re.IGNORECASE)
_GATEWAY_CHANNEL = re.compile(r"^sofia/gateway/([^/]+)/")


def variables_from_event(headers: Mapping[str, Any]) -> dict[str, str]:
    """An event's headers as a channel-variable mapping: ``variable_x`` -> ``x``, plus the core fields."""
    out: dict[str, str] = {}
    for key, value in headers.items():
        if key.startswith("variable_") and isinstance(value, str):
            out[key[9:]] = value
    for header, name in _EVENT_FIELDS.items():
        value = headers.get(header)
        if isinstance(value, str) and value and name not in out:
            out[name] = value
    if "Event-Date-Timestamp" in headers and "event_timestamp" not in out:
        out["event_timestamp"] = str(headers["Event-Date-Timestamp"])
    return out


def _sip_code(value: str | None) -> str | None:
    if not value:
        return None
    match = _SIP_CODE.match(value)
    return match.group(1) if match else None


def reason_q850(sip_reason: str | None) -> int | None:
    """The cause of a ``Reason: Q.850;cause=17;text="User busy"`` header, or None."""
    if not sip_reason:
        return None
    match = _REASON_CAUSE.search(sip_reason)
    return int(match.group(1)) if match else None


def cause_q850(name: str | None) -> int | None:
    """A FreeSWITCH cause name (``USER_BUSY``) as its Q.850 number."""
    return HANGUP_CAUSE_Q850.get(name.strip().upper()) if name else None


def _int(value: str | None) -> int | None:
    # ASCII digits, at most 20 (a microsecond timestamp has 16): str.isdigit() also takes "²", which int() refuses,
    # and a 400-digit "timestamp" overflows a float; either would escape the observer.
    return small_int(value, 20)


def _first(variables: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = variables.get(name)
        if value:
            return value
    return None


def sip_code_and_phrase(v: Mapping[str, str]) -> tuple[str | None, str | None, str | None]:
    """(code, carrier phrase, method) of the leg's final SIP answer, preferring the bridged leg's copy on A."""
    code = _sip_code(v.get("last_bridge_proto_specific_hangup_cause"))
    if code is None:
        code = _sip_code(v.get("sip_invite_failure_status"))
    if code is None:
        code = _sip_code(v.get("proto_specific_hangup_cause"))
    if code is None:
        code = _sip_code(v.get("sip_term_status"))
    if code is None:
        return None, None, None
    phrase = None
    if _sip_code(v.get("sip_invite_failure_status")) == code:
        phrase = v.get("sip_invite_failure_phrase") or v.get("sip_hangup_phrase")
    elif v.get("last_bridge_proto_specific_hangup_cause"):
        phrase = v.get("sip_hangup_phrase")
    disposition = v.get("sip_hangup_disposition", "")
    method = "BYE" if disposition.endswith("_bye") else "INVITE" if code >= "300" else None
    return code, phrase or None, method


def observed_q850(v: Mapping[str, str]) -> int | None:
    """The Q.850 cause: a Reason header wins (it overrides FreeSWITCH's SIP table), then the bridged leg's cause
    on A, then the leg's own number, then its cause name."""
    q = reason_q850(v.get("sip_reason"))
    if q is not None:
        return q
    if v.get("last_bridge_hangup_cause"):
        q = cause_q850(v["last_bridge_hangup_cause"])
        if q is not None:
            return q
    q = _int(v.get("hangup_cause_q850"))
    if q is not None:
        return q
    q = cause_q850(v.get("hangup_cause"))
    if q is not None:
        return q
    return _int(v.get("sip_term_cause"))


def trunk_of(v: Mapping[str, str]) -> str | None:
    """The gateway the leg went through: explicit dialplan tag, the gateway variable, the channel name, the profile."""
    explicit = _first(v, "pbx_codes_trunk", "sip_gateway_name")
    if explicit:
        return explicit
    match = _GATEWAY_CHANNEL.match(v.get("channel_name", ""))
    if match:
        return match.group(1)
    return v.get("sofia_profile_name") or None


def hangup_side(v: Mapping[str, str], *, far_end: Side, bridged_failure: bool) -> Side:
    """Who ended the leg, from ``sip_hangup_disposition`` read with the leg's direction.

    On an outbound leg ``recv_*`` is the far end (carrier or callee) and ``send_cancel``/``send_bye`` is our caller's
    side; on an inbound leg ``recv_*`` is the caller and ``send_*`` is whatever we were told by the bridged leg.
    """
    disposition = v.get("sip_hangup_disposition", "")
    outbound = v.get("direction", "").lower() == "outbound"
    if outbound:
        if disposition.startswith("recv_"):
            return far_end
        if disposition in ("send_cancel", "send_bye"):
            return Side.CALLER
        if disposition == "send_refuse":
            return Side.LOCAL
    else:
        if disposition in ("recv_cancel", "recv_bye"):
            return Side.CALLER
        if disposition.startswith("send_") or not disposition:
            return far_end if bridged_failure else (Side.LOCAL if disposition else Side.UNKNOWN)
    return Side.UNKNOWN


def is_failure(code: str | None, cause: str | None) -> bool:
    """A leg failed when its final SIP answer is >= 300, or, with no SIP code, its cause is not a normal one.
    ``sip_term_status=200`` after a BYE is the BYE's answer: a normal clearing."""
    if code is not None:
        return code >= "300"
    return (cause or "").strip().upper() not in NORMAL_CAUSES


def observation_from_variables(v: Mapping[str, str], *, inherited_trunk: str | None = None,
                               inherited_catalog: str | None = None,
                               report_answered: bool = False) -> Observation | None:
    """One leg's channel variables -> Observation, or None when the leg did not fail (nothing to explain).

    With `report_answered`, an answered leg that ended normally is reported too, as SIP 200 (the live listener's
    denominator for failure rates)."""
    code, phrase, method = sip_code_and_phrase(v)
    cause = v.get("last_bridge_hangup_cause") if v.get("last_bridge_proto_specific_hangup_cause") else None
    cause = cause or v.get("hangup_cause") or v.get("originate_failed_cause")
    if not is_failure(code, cause):
        answered = code == "200" or (v.get("answer_epoch") or "0") != "0"
        if not report_answered or not answered:
            return None
        code, phrase = "200", None
    trunk = trunk_of(v)
    if not v.get("pbx_codes_trunk") and not v.get("sip_gateway_name") and inherited_trunk:
        # An inbound A-leg only knows its own ingress profile; the trunk that failed is the bridged leg's gateway.
        trunk = inherited_trunk
    via_gateway = bool(v.get("pbx_codes_trunk") or v.get("sip_gateway_name") or inherited_trunk
                       or _GATEWAY_CHANNEL.match(v.get("channel_name", "")))
    far_end = Side.CARRIER if via_gateway else Side.CALLEE
    bridged = bool(v.get("last_bridge_proto_specific_hangup_cause") or v.get("last_bridge_hangup_cause")
                   or v.get("originate_failed_cause"))
    timestamp = None
    micro = _int(v.get("event_timestamp"))
    if micro:
        timestamp = micro / 1_000_000
    elif _int(v.get("end_epoch")):
        timestamp = float(v["end_epoch"])
    return Observation(
        sip_code=code,
        phrase=phrase,
        q850=observed_q850(v),
        method=method,
        catalog=v.get("pbx_codes_catalog") or inherited_catalog or None,
        trunk=trunk,
        hangup_by=hangup_side(v, far_end=far_end, bridged_failure=bridged),
        pbx=PBX,
        call_id=_first(v, "call_uuid", "signal_bond", "originator", "other_leg_unique_id", "uuid"),
        leg_id=v.get("uuid") or None,
        channel=v.get("channel_name") or None,
        number=v.get("destination_number") or None,
        dial_status=_first(v, "DIALSTATUS", "originate_disposition") or (cause or None),
        timestamp=timestamp,
    )


class FreeswitchObserver:
    """ESL events -> Observations: one per failed leg, once (CHANNEL_HANGUP and HANGUP_COMPLETE both carry it).

    Keeps two small bounded memories: which legs were already decided, and which gateway/catalog each call's
    outbound leg used, so the inbound A-leg (which only knows its ingress profile) is explained with the carrier's
    catalog.
    """

    HANGUP_EVENTS = frozenset({"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"})
    # Events that only teach which gateway a call's outbound leg used (the A-leg inherits it).
    TRUNK_EVENTS = frozenset({"CHANNEL_CREATE", "CHANNEL_ORIGINATE", "CHANNEL_OUTGOING", "CHANNEL_PROGRESS"})
    # Everything `feed` looks at: a parser built with these as its wanted events loses nothing.
    WANTED_EVENTS = HANGUP_EVENTS | TRUNK_EVENTS

    def __init__(self, memory: int = 20000, report_answered: bool = False) -> None:
        self.report_answered = report_answered
        self._decided: OrderedDict[str, None] = OrderedDict()
        self._trunks: OrderedDict[str, tuple[str | None, str | None]] = OrderedDict()
        self._memory = memory

    def _remember(self, table: OrderedDict, key: str, value: Any) -> None:
        table[key] = value
        table.move_to_end(key)
        if len(table) > self._memory:
            table.popitem(last=False)

    def feed(self, event: Event) -> list[Observation]:
        name = event.name
        if event.format == "xml":
            return []
        if name not in self.WANTED_EVENTS:
            return []
        return self.feed_variables(name, variables_from_event(event.headers))

    def feed_variables(self, name: str, v: Mapping[str, str]) -> list[Observation]:
        """One event's worth of channel variables (from ESL, or a CDR read back as if it were the event)."""
        uuid = v.get("uuid")
        if not uuid:
            return []
        self._learn_trunk(v, uuid)
        if name not in self.HANGUP_EVENTS or uuid in self._decided:
            return []
        inherited = self._trunks.get(uuid, (None, None)) if not v.get("sip_gateway_name") else (None, None)
        obs = observation_from_variables(v, inherited_trunk=inherited[0], inherited_catalog=inherited[1],
                                         report_answered=self.report_answered)
        self._remember(self._decided, uuid, None)
        return [obs] if obs is not None else []

    def _learn_trunk(self, v: Mapping[str, str], uuid: str) -> None:
        gateway = v.get("pbx_codes_trunk") or v.get("sip_gateway_name")
        match = _GATEWAY_CHANNEL.match(v.get("channel_name", ""))
        gateway = gateway or (match.group(1) if match else None)
        parent = _first(v, "call_uuid", "signal_bond", "originator")
        if gateway and parent and parent != uuid:
            self._remember(self._trunks, parent, (gateway, v.get("pbx_codes_catalog")))


def iter_events(data: bytes, wanted_events: Iterable[str] | None = None) -> Iterable[Event]:
    """The events of a raw capture (plain or JSON), through the same parser the live listener uses; with
    ``wanted_events`` only those are decoded (the rest are skipped unread, as the listener does)."""
    for frame in EslParser(wanted_events).feed(data):
        if isinstance(frame, Event):
            yield frame


def annotate_events(events: Iterable[Event], resolve: Callable[[Observation], Annotation],
                    observer: FreeswitchObserver | None = None, catalog: str | None = None) -> list[Annotation]:
    """The listener's path: events -> observer -> (optional forced catalog) -> resolver."""
    from dataclasses import replace

    observer = observer or FreeswitchObserver()
    out: list[Annotation] = []
    for event in events:
        for obs in observer.feed(event):
            if catalog:
                obs = replace(obs, catalog=catalog)
            out.append(resolve(obs))
    return out


def replay(data: bytes, resolver: Any, catalog: str | None = None) -> list[Annotation]:
    """Annotations for every failed leg in a raw ESL capture, exactly as the live listener would produce them."""
    return annotate_events(iter_events(data, FreeswitchObserver.WANTED_EVENTS), resolver.resolve, catalog=catalog)


__all__ = [
    "FreeswitchObserver", "HANGUP_CAUSE_Q850", "HOOK_VARIABLES", "annotate_events", "cause_q850", "hangup_side",
    "is_failure", "iter_events", "observation_from_variables", "observed_q850", "reason_q850", "replay",
    "sip_code_and_phrase", "trunk_of", "variables_from_event",
]
