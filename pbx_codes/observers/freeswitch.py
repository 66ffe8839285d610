"""FreeSWITCH channel variables -> Observation: every piece of knowledge about where FreeSWITCH keeps a leg's cause.

One function, `observation_from_variables`, reads a mapping of channel variables (names without the ``variable_``
prefix, as a dialplan or a Lua hook sees them). The ESL observer (which first turns an event's headers into that
mapping with `variables_from_event`), the hangup-hook endpoint and the CDR backfill all call it, each with a
`CallMemory` of the call's earlier legs, so the three can never disagree.

What a real FreeSWITCH reports (see the recorded captures and tests/fixtures/freeswitch/live2/README.md):
- the leg that received the final response (B, towards the carrier): ``sip_invite_failure_status``/``_phrase``
  (the carrier's exact words), ``proto_specific_hangup_cause`` (``sip:409``), ``sip_term_status``, ``sip_reason``
  (a Q.850 ``Reason`` header), ``sip_hangup_disposition`` (``recv_refuse`` ...; only from CHANNEL_HANGUP_COMPLETE
  on, so a leg is decided there and not on CHANNEL_HANGUP);
- a response FreeSWITCH made itself (closed port -> ``503``, INVITE timer -> ``408``) looks like the carrier's in
  every cause variable; only ``sip_reply_port=0`` (and no ``sip_network_ip``) tells that nothing came from the
  network. Where those variables are missing (a CSV CDR), a ``408``/``503`` without Reason is marked not certain;
- the bridging leg (A) gets copies: ``last_bridge_proto_specific_hangup_cause``, ``last_bridge_hangup_cause``,
  ``sip_invite_failure_*``, ``sip_hangup_phrase``; A's own hangup cause can differ (480 -> A ends NORMAL_CLEARING,
  and with ``continue_on_fail=true`` always NORMAL_CLEARING);
- a bridge that never reached a carrier leaves only ``originate_failed_cause`` on A: ``GATEWAY_DOWN`` (gateway
  marked down by its OPTIONS ping: no B-leg, no INVITE), ``DESTINATION_OUT_OF_ORDER`` (FreeSWITCH's
  sessions-per-second throttle, and also a duplicate ``origination_uuid``: not certain which);
- early media makes ``DIALSTATUS``/``originate_disposition`` say ``SUCCESS`` although the call failed after it; the
  ``Reason`` of a 183 is dropped by FreeSWITCH and is in no variable;
- ``sip_term_status=200`` with ``recv_bye`` is the BYE's status: an answered call, not a failure;
- FreeSWITCH numbers its own causes above 127 (``ORIGINATOR_CANCEL`` 487, ``UNWANTED`` 819, ``GATEWAY_DOWN`` 809):
  those are never Q.850 causes; the name is kept in ``Observation.pbx_cause``.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypedDict

from pbx_codes.model import Annotation, Observation, Outcome, Side
from pbx_codes.observers.causes import NORMAL_CAUSE_NAMES, Q850_MAX, reason_q850, sip_code
from pbx_codes.observers.channels import GATEWAY_CHANNEL, GATEWAY_IN_DIAL
from pbx_codes.protocols import small_int
from pbx_codes.protocols.esl import EslParser, Event

PBX = "freeswitch"

# FreeSWITCH's names of the Q.850 causes (switch_types.h) -> their numbers, for events that carry only a name.
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
    "PROTOCOL_ERROR": 111, "INTERWORKING": 127,
}
#: FreeSWITCH's own causes (switch_types.h, 1.10 and later): numbered above 127, never Q.850 causes.
FREESWITCH_CAUSES: Mapping[str, int] = {
    "SUCCESS": 142, "ORIGINATOR_CANCEL": 487, "CRASH": 700, "SYSTEM_SHUTDOWN": 701, "LOSE_RACE": 702,
    "MANAGER_REQUEST": 703, "BLIND_TRANSFER": 800, "ATTENDED_TRANSFER": 801, "ALLOTTED_TIMEOUT": 802,
    "USER_CHALLENGE": 803, "MEDIA_TIMEOUT": 804, "PICKED_OFF": 805, "USER_NOT_REGISTERED": 806,
    "PROGRESS_TIMEOUT": 807, "INVALID_GATEWAY": 808, "GATEWAY_DOWN": 809, "INVALID_URL": 810,
    "INVALID_PROFILE": 811, "NO_PICKUP": 812, "SRTP_READ_ERROR": 813, "BOWOUT": 814, "BUSY_EVERYWHERE": 815,
    "DECLINE": 816, "DOES_NOT_EXIST_ANYWHERE": 817, "NOT_ACCEPTABLE": 818, "UNWANTED": 819, "NO_IDENTITY": 820,
    "BAD_IDENTITY_INFO": 821, "UNSUPPORTED_CERTIFICATE": 822, "INVALID_IDENTITY": 823, "STALE_DATE": 824,
    "REJECT_ALL": 825,
}
_CAUSE_BY_NUMBER = {number: name for name, number in FREESWITCH_CAUSES.items()}

#: A bridge that never reached a carrier (no SIP response at all): what FreeSWITCH's verdict on the A-leg means,
#: and whether it is certain. DESTINATION_OUT_OF_ORDER is the sessions-per-second throttle, but a duplicate
#: origination_uuid gives it too; a temporary failure without any response can be a route or a transport error.
NO_RESPONSE_OUTCOMES: Mapping[str, tuple[Outcome | None, bool]] = {
    "GATEWAY_DOWN": (Outcome.UNREACHABLE, True),
    "DESTINATION_OUT_OF_ORDER": (Outcome.PBX_LIMIT, False),
    "SWITCH_CONGESTION": (Outcome.PBX_LIMIT, True),
    "NORMAL_TEMPORARY_FAILURE": (Outcome.UNREACHABLE, False),
    "NETWORK_OUT_OF_ORDER": (Outcome.UNREACHABLE, False),
    "RECOVERY_ON_TIMER_EXPIRE": (Outcome.LOCAL_RESPONSE, True),
    "PROGRESS_TIMEOUT": (Outcome.LOCAL_RESPONSE, True),
    "NO_ANSWER": (Outcome.RING_TIMEOUT, True),
    "ALLOTTED_TIMEOUT": (Outcome.RING_TIMEOUT, True),
    "ORIGINATOR_CANCEL": (Outcome.CALLER_CANCEL, True),
}
#: Codes FreeSWITCH makes up itself when nothing came back (transport error -> 503, INVITE timer -> 408).
SELF_MADE_CODES = frozenset({"408", "503"})

# The variables the hook script sends and the endpoint accepts (a whitelist: nothing else is read).
HOOK_VARIABLES: tuple[str, ...] = (
    "uuid", "call_uuid", "signal_bond", "originator", "channel_name", "direction", "destination_number",
    "hangup_cause", "hangup_cause_q850", "sip_term_status", "sip_term_cause", "sip_invite_failure_status",
    "sip_invite_failure_phrase", "sip_hangup_phrase", "sip_reason", "proto_specific_hangup_cause",
    "last_bridge_proto_specific_hangup_cause", "last_bridge_hangup_cause", "originate_failed_cause",
    "sip_hangup_disposition", "sip_gateway_name", "sofia_profile_name", "pbx_codes_catalog", "pbx_codes_trunk",
    "DIALSTATUS", "end_epoch", "originate_disposition", "sip_reply_port", "sip_network_ip", "current_application",
    "current_application_data", "start_uepoch", "progress_uepoch", "progress_media_uepoch", "answer_uepoch",
    "end_uepoch",
)

# Event headers that are not variables but say the same thing; the variable wins when both are present.
_EVENT_FIELDS = {
    "Unique-ID": "uuid", "Channel-Name": "channel_name", "Hangup-Cause": "hangup_cause",
    "Call-Direction": "direction", "Caller-Destination-Number": "destination_number",
    "Other-Leg-Unique-ID": "other_leg_unique_id", "Channel-Call-UUID": "channel_call_uuid",
    "Caller-Channel-Created-Time": "start_uepoch", "Caller-Channel-Progress-Time": "progress_uepoch",
    "Caller-Channel-Progress-Media-Time": "progress_media_uepoch", "Caller-Channel-Answered-Time": "answer_uepoch",
    "Caller-Channel-Hangup-Time": "end_uepoch",
}



def variables_from_event(headers: Mapping[str, Any]) -> dict[str, str]:
    """An event's headers as a channel-variable mapping: ``variable_x`` -> ``x``, plus the core fields."""
    out: dict[str, str] = {}
    for key, value in headers.items():
        if key.startswith("variable_") and isinstance(value, str):
            out[key[9:]] = value
    for header, name in _EVENT_FIELDS.items():
        value = headers.get(header)
        if isinstance(value, str) and value and value != "0" and name not in out:
            out[name] = value
    if "Event-Date-Timestamp" in headers and "event_timestamp" not in out:
        out["event_timestamp"] = str(headers["Event-Date-Timestamp"])
    return out


def cause_q850(name: str | None) -> int | None:
    """A FreeSWITCH cause name (``USER_BUSY``) as its Q.850 number; None for FreeSWITCH's own causes."""
    return HANGUP_CAUSE_Q850.get(name.strip().upper()) if name else None


def cause_name(value: str | None) -> str | None:
    """FreeSWITCH's name for a cause given by name or by number (``819`` -> ``UNWANTED``)."""
    if not value:
        return None
    text = value.strip().upper()
    number = small_int(text, 6)
    if number is None:
        return text or None
    if number > Q850_MAX:
        return _CAUSE_BY_NUMBER.get(number, text)
    return next((n for n, q in HANGUP_CAUSE_Q850.items() if q == number), None)


def _int(value: str | None) -> int | None:
    # ASCII digits, at most 20 (a microsecond timestamp has 16): str.isdigit() also takes "²", which int() refuses,
    # and a 400-digit "timestamp" overflows a float; either would escape the observer.
    return small_int(value, 20)


def _seconds(value: str | None) -> float | None:
    micro = _int(value)
    return micro / 1_000_000 if micro else None


def _first(variables: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = variables.get(name)
        if value:
            return value
    return None


def sip_code_and_phrase(v: Mapping[str, str]) -> tuple[str | None, str | None, str | None]:
    """(code, carrier phrase, method) of the leg's final SIP answer, preferring the bridged leg's copy on A."""
    code = sip_code(v.get("last_bridge_proto_specific_hangup_cause"))
    if code is None:
        code = sip_code(v.get("sip_invite_failure_status"))
    if code is None:
        code = sip_code(v.get("proto_specific_hangup_cause"))
    if code is None:
        code = sip_code(v.get("sip_term_status"))
    if code is None:
        return None, None, None
    phrase = None
    if sip_code(v.get("sip_invite_failure_status")) == code:
        phrase = v.get("sip_invite_failure_phrase") or v.get("sip_hangup_phrase")
    elif v.get("last_bridge_proto_specific_hangup_cause"):
        phrase = v.get("sip_hangup_phrase")
    disposition = v.get("sip_hangup_disposition", "")
    method = "BYE" if disposition.endswith("_bye") else "INVITE" if code >= "300" else None
    return code, phrase or None, method


def observed_causes(v: Mapping[str, str], cause: str | None) -> tuple[int | None, str | None]:
    """(Q.850 cause, FreeSWITCH's own cause name) of a leg whose deciding cause name is `cause`.

    A Reason header wins (it overrides FreeSWITCH's SIP table). A cause FreeSWITCH numbers above 127 has no Q.850
    value (its ``hangup_cause_q850`` then is a stand-in 16, and ``sip_term_cause`` its own number): only its name
    is kept."""
    q = reason_q850(v.get("sip_reason"))
    name = cause_name(cause)
    own = name if name and name not in HANGUP_CAUSE_Q850 and name not in NORMAL_CAUSE_NAMES - {"SUCCESS"} else None
    if q is not None:
        return q, own
    if name and name in HANGUP_CAUSE_Q850:
        return HANGUP_CAUSE_Q850[name], None
    if own:
        return None, own
    for number in (_int(v.get("hangup_cause_q850")), _int(v.get("sip_term_cause"))):
        if number is not None and number <= Q850_MAX:
            return number, None
        if number is not None:
            return None, _CAUSE_BY_NUMBER.get(number, str(number))
    return None, None


def observed_q850(v: Mapping[str, str]) -> int | None:
    """The leg's Q.850 cause as `observation_from_variables` reads it (never a number above 127)."""
    return observed_causes(v, _deciding_cause(v))[0]


def _gateway_of_bridge(v: Mapping[str, str]) -> str | None:
    """The gateway an A-leg's bridge dialled (``sofia/gateway/<name>/...``): all a gateway marked down leaves."""
    if (v.get("current_application") or v.get("last_app") or "bridge") != "bridge":
        return None
    for name in ("current_application_data", "last_arg"):
        match = GATEWAY_IN_DIAL.search(v.get(name) or "")
        if match:
            return match.group(1)
    return None


def trunk_of(v: Mapping[str, str]) -> str | None:
    """The gateway the leg went through: explicit dialplan tag, the gateway variable, the channel name, the
    gateway its bridge dialled, the profile."""
    explicit = _first(v, "pbx_codes_trunk", "sip_gateway_name")
    if explicit:
        return explicit
    match = GATEWAY_CHANNEL.match(v.get("channel_name", ""))
    if match:
        return match.group(1)
    return _gateway_of_bridge(v) or v.get("sofia_profile_name") or None


def parent_of(v: Mapping[str, str]) -> str | None:
    """The A-leg an outbound leg was created for (None for an A-leg or an originated leg of its own)."""
    if v.get("direction", "").lower() != "outbound":
        return None
    parent = _first(v, "originator", "signal_bond", "call_uuid")
    return parent if parent and parent != v.get("uuid") else None


@dataclass(frozen=True, slots=True)
class Attempt:
    """What an A-leg inherits from the last of its B-legs that was decided."""

    trunk: str | None
    catalog: str | None
    outcome: Outcome | None
    certain: bool
    hangup_by: Side


class CallMemory:
    """The bounded memory of a call's legs that one leg's variables cannot hold: the order of a call's outbound
    legs (its attempts), each one's gateway and catalog, and how the last decided one ended (the A-leg carries it).
    The ESL observer, the hook endpoint and the backfill each keep one."""

    def __init__(self, size: int = 20000) -> None:
        self._size = size
        self._attempts: OrderedDict[str, list[str]] = OrderedDict()
        self._gateways: OrderedDict[str, tuple[str, str | None]] = OrderedDict()
        self._last: OrderedDict[str, Attempt] = OrderedDict()

    def _put(self, table: OrderedDict[str, Any], key: str, value: Any) -> None:
        table[key] = value
        table.move_to_end(key)
        if len(table) > self._size:
            table.popitem(last=False)

    def learn(self, v: Mapping[str, str]) -> None:
        """A leg was seen (created, or first seen at its end): number it among its call's attempts."""
        uuid, parent = v.get("uuid"), parent_of(v)
        if not uuid or not parent:
            return
        legs = self._attempts.get(parent)
        if legs is None:
            legs = []
            self._put(self._attempts, parent, legs)
        if uuid not in legs and len(legs) < 64:
            legs.append(uuid)
        gateway = _first(v, "pbx_codes_trunk", "sip_gateway_name")
        match = GATEWAY_CHANNEL.match(v.get("channel_name", ""))
        gateway = gateway or (match.group(1) if match else None)
        if gateway:
            self._put(self._gateways, parent, (gateway, v.get("pbx_codes_catalog") or None))

    def attempt_of(self, v: Mapping[str, str]) -> int | None:
        parent = parent_of(v)
        if parent is None:
            return 1 if v.get("direction", "").lower() == "outbound" else None
        legs = self._attempts.get(parent) or []
        uuid = v.get("uuid")
        return legs.index(uuid) + 1 if uuid in legs else None

    def gateway_for(self, a_leg: str) -> tuple[str, str | None] | None:
        return self._gateways.get(a_leg)

    def legs_made(self, a_leg: str | None) -> int:
        """How many outbound legs (attempts) the call of this A-leg created."""
        return len(self._attempts.get(a_leg) or ()) if a_leg else 0

    def record(self, v: Mapping[str, str], obs: Observation) -> None:
        """A B-leg was decided: its A-leg carries this unless a later attempt replaces it."""
        parent = parent_of(v)
        if parent:
            self._put(self._last, parent, Attempt(obs.trunk, obs.catalog, obs.outcome, obs.certain,
                                                  obs.hangup_by or Side.UNKNOWN))

    def last_attempt(self, a_leg: str | None) -> Attempt | None:
        return self._last.get(a_leg) if a_leg else None


def is_failure(code: str | None, cause: str | None) -> bool:
    """A leg failed when its final SIP answer is >= 300, or, with no SIP code, its cause is not a normal one.
    ``sip_term_status=200`` after a BYE is the BYE's answer: a normal clearing."""
    if code is not None:
        return code >= "300"
    return (cause or "").strip().upper() not in NORMAL_CAUSE_NAMES


def _deciding_cause(v: Mapping[str, str]) -> str | None:
    """The cause that explains the leg: the bridged leg's on an A-leg that bridged, FreeSWITCH's verdict on a
    bridge that created no leg (A's own cause is then NORMAL_CLEARING), else the leg's own."""
    if v.get("last_bridge_proto_specific_hangup_cause") and v.get("last_bridge_hangup_cause"):
        return v["last_bridge_hangup_cause"]
    own = v.get("hangup_cause")
    failed = v.get("originate_failed_cause")
    if failed and (own or "").upper() in NORMAL_CAUSE_NAMES and v.get("direction", "").lower() != "outbound":
        return failed
    return own or failed


#: FreeSWITCH's verdicts on a bridge that created no outbound leg at all.
NO_LEG_CAUSES = frozenset({"GATEWAY_DOWN", "DESTINATION_OUT_OF_ORDER", "SWITCH_CONGESTION", "INVALID_GATEWAY",
                           "INVALID_PROFILE", "INVALID_URL", "CHAN_NOT_IMPLEMENTED"})


def _last_attempt_made_no_leg(v: Mapping[str, str]) -> bool:
    """On an A-leg: the last bridge ended with one of `NO_LEG_CAUSES` while the copies of an earlier attempt
    (``last_bridge_*``) say something else."""
    failed = (v.get("originate_failed_cause") or "").upper()
    return failed in NO_LEG_CAUSES and bool(v.get("last_bridge_proto_specific_hangup_cause")) and \
        failed != (v.get("last_bridge_hangup_cause") or "").upper()


def _response_source(v: Mapping[str, str]) -> str | None:
    """Where an outbound leg's final response came from: ``network``, ``local`` (FreeSWITCH made it: no reply
    address, ``sip_reply_port=0``), or None when the variables that tell are missing."""
    port = v.get("sip_reply_port")
    if port == "0" and not v.get("sip_reason"):
        return "local"
    if v.get("sip_network_ip") or (port and port != "0") or v.get("sip_reason"):
        return "network"
    return None


class _Timings(TypedDict):
    """A leg's moments (epoch seconds), as Observation takes them."""

    started_at: float | None
    progress_at: float | None
    answered_at: float | None
    ended_at: float | None


def _timings(v: Mapping[str, str]) -> _Timings:
    progress = [t for t in (_seconds(v.get("progress_uepoch")), _seconds(v.get("progress_media_uepoch"))) if t]
    started = _seconds(v.get("start_uepoch"))
    if started is None and _int(v.get("start_epoch")):
        started = float(v["start_epoch"])
    ended = _seconds(v.get("end_uepoch"))
    if ended is None and _int(v.get("end_epoch")):
        ended = float(v["end_epoch"])
    return {"started_at": started, "progress_at": min(progress) if progress else None,
            "answered_at": _seconds(v.get("answer_uepoch")) or (float(v["answer_epoch"])
                                                                  if _int(v.get("answer_epoch")) else None),
            "ended_at": ended}


def hangup_side(v: Mapping[str, str], *, far_end: Side, bridged: bool, local: bool) -> Side:
    """Who ended the leg, from ``sip_hangup_disposition`` read with the leg's direction and role.

    Outbound: ``recv_*`` is the far end (carrier or callee), unless FreeSWITCH made the response itself (`local`);
    ``send_cancel``/``send_bye`` is the A side (our caller) on a bridged leg and FreeSWITCH on an originated one.
    Inbound (A): ``recv_*`` is the caller; ``send_*`` is what the bridged leg brought (the far end, or FreeSWITCH
    when nothing came from the carrier), and FreeSWITCH itself when no carrier was reached."""
    disposition = v.get("sip_hangup_disposition", "")
    if v.get("direction", "").lower() == "outbound":
        if disposition.startswith("recv_"):
            return Side.LOCAL if local else far_end
        if disposition in ("send_cancel", "send_bye"):
            return Side.CALLER if parent_of(v) else Side.LOCAL
        if disposition == "send_refuse":
            return Side.LOCAL
        return Side.UNKNOWN
    if disposition in ("recv_cancel", "recv_bye"):
        return Side.CALLER
    if disposition.startswith("send_") or not disposition:
        if bridged:
            return Side.LOCAL if local else far_end
        return Side.LOCAL if disposition else Side.UNKNOWN
    return Side.UNKNOWN


def observation_from_variables(v: Mapping[str, str], *, memory: CallMemory | None = None,
                               report_answered: bool = False) -> Observation | None:
    """One leg's channel variables -> Observation, or None when there is nothing to report.

    A failed leg is always reported; with `report_answered` an answered leg is reported too, as SIP 200 with who
    hung up (the live listener's denominator for failure rates)."""
    uuid = v.get("uuid") or None
    outbound = v.get("direction", "").lower() == "outbound"
    code, phrase, method = sip_code_and_phrase(v)
    cause = _deciding_cause(v)
    answered = bool(_int(v.get("answer_epoch")) or _int(v.get("answer_uepoch")))
    inherited = memory.last_attempt(uuid) if memory is not None and not outbound else None
    bridged = bool(v.get("last_bridge_proto_specific_hangup_cause") or v.get("last_bridge_hangup_cause")
                   or v.get("sip_invite_failure_status") or inherited)
    trunk, catalog = trunk_of(v), v.get("pbx_codes_catalog") or None
    no_leg_last = not outbound and _last_attempt_made_no_leg(v)
    if no_leg_last:
        # An earlier attempt reached a carrier (its copies are still on A), the last one never did: A carries
        # the last one, FreeSWITCH's own verdict on it.
        code = phrase = method = None
        cause, inherited, bridged = v["originate_failed_cause"], None, False
        trunk = _gateway_of_bridge(v) or trunk
    if not outbound and memory is not None and uuid and not no_leg_last:
        gateway = memory.gateway_for(uuid)
        if inherited is not None:      # the A-leg carries the failure of its last attempt, with that carrier's catalog
            trunk, catalog = inherited.trunk or trunk, inherited.catalog
        elif gateway and not v.get("pbx_codes_trunk") and not v.get("sip_gateway_name"):
            trunk, catalog = gateway[0], catalog or gateway[1]
    via_gateway = bool(trunk and (v.get("pbx_codes_trunk") or v.get("sip_gateway_name") or inherited
                                  or GATEWAY_CHANNEL.match(v.get("channel_name", "")) or _gateway_of_bridge(v)
                                  or (memory is not None and uuid and memory.gateway_for(uuid))))
    far_end = Side.CARRIER if via_gateway else Side.CALLEE

    outcome: Outcome | None
    certain, local = True, False
    q850, pbx_cause = observed_causes(v, cause)
    dial_status = _first(v, "DIALSTATUS", "originate_disposition")
    if (code is not None and code >= "300") or (is_failure(code, cause) and not (answered and code is None)):
        cancelled = (code == "487" or (cause or "").upper() == "ORIGINATOR_CANCEL"
                     or v.get("sip_hangup_disposition") in ("recv_cancel", "send_cancel"))
        if cancelled:
            outcome, code, method = Outcome.CALLER_CANCEL, code or "487", method or "INVITE"
        elif code is not None:
            source = _response_source(v) if outbound else None
            if inherited is not None and inherited.outcome is not None:
                outcome, certain = inherited.outcome, inherited.certain
                local = inherited.hangup_by is Side.LOCAL
            elif source == "local":
                local = True
                outcome = Outcome.LOCAL_RESPONSE if code == "408" else Outcome.UNREACHABLE
            elif source == "network" or code not in SELF_MADE_CODES or reason_q850(v.get("sip_reason")) is not None:
                outcome = Outcome.CARRIER_FINAL
            else:  # a 408/503 with nothing telling FreeSWITCH's own from the carrier's
                outcome, certain = None, False
        else:  # no SIP response at all: a bridge that never reached a carrier, or FreeSWITCH's own verdict
            name = cause_name(cause) or ""
            outcome, certain = NO_RESPONSE_OUTCOMES.get(name, (None, True))
            if not bridged:
                q850, pbx_cause, local = None, name or None, True
        if dial_status == "SUCCESS":   # early media made the bridge "succeed"; the call failed after it
            dial_status = cause or None
        dial_status = dial_status or cause or None
    elif answered or code == "200":
        if not report_answered:
            return None
        code, phrase, outcome, pbx_cause = "200", None, Outcome.ANSWERED, None
    else:
        return None

    attempt = memory.attempt_of(v) if memory is not None else (None if parent_of(v) else (1 if outbound else None))
    if attempt is None and not outbound and not bridged and pbx_cause in NO_LEG_CAUSES and (
            _gateway_of_bridge(v) or v.get("pbx_codes_trunk")):
        # The last bridge created no leg (a gateway marked down, the throttle): A stands for that attempt on the
        # trunk its dial string (or the dialplan) named, after the legs the call did create.
        attempt = (memory.legs_made(uuid) if memory is not None else int(no_leg_last)) + 1
    timings = _timings(v)
    timestamp = None
    micro = _int(v.get("event_timestamp"))
    if micro:
        timestamp = micro / 1_000_000
    elif timings["ended_at"]:
        timestamp = timings["ended_at"]
    return Observation(
        sip_code=code,
        phrase=phrase,
        q850=q850,
        method=method,
        catalog=catalog,
        trunk=trunk,
        hangup_by=hangup_side(v, far_end=far_end, bridged=bridged, local=local),
        pbx=PBX,
        call_id=_first(v, "call_uuid", "signal_bond", "originator", "other_leg_unique_id", "uuid"),
        leg_id=uuid,
        channel=v.get("channel_name") or None,
        number=v.get("destination_number") or None,
        dial_status=dial_status,
        timestamp=timestamp,
        outcome=outcome,
        certain=certain,
        attempt=attempt,
        pbx_cause=pbx_cause,
        **timings,
    )


class FreeswitchObserver:
    """ESL events -> Observations: one per leg, decided once, on CHANNEL_HANGUP_COMPLETE (the first event that
    carries ``sip_hangup_disposition``, i.e. who hung up); CHANNEL_HANGUP's variables are kept until then. A leg
    whose HANGUP_COMPLETE was missed (the connection dropped in between) is left to the CDR backfill, which stores it
    under the same identity.

    Its `CallMemory` numbers each call's attempts, and lets the A-leg (which only knows its ingress profile) be
    explained with its last carrier's gateway, catalog and outcome.
    """

    DECIDING_EVENTS = frozenset({"CHANNEL_HANGUP_COMPLETE"})
    HANGUP_EVENTS = frozenset({"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"})
    # Events that only teach which gateway a call's outbound leg used (the A-leg inherits it) and attempt order.
    TRUNK_EVENTS = frozenset({"CHANNEL_CREATE", "CHANNEL_ORIGINATE", "CHANNEL_OUTGOING", "CHANNEL_PROGRESS"})
    # Everything `feed` looks at: a parser built with these as its wanted events loses nothing.
    WANTED_EVENTS = HANGUP_EVENTS | TRUNK_EVENTS | DECIDING_EVENTS

    def __init__(self, memory: int = 20000, report_answered: bool = False) -> None:
        self.report_answered = report_answered
        self.memory = CallMemory(memory)
        self._decided: OrderedDict[str, None] = OrderedDict()
        self._pending: OrderedDict[str, Mapping[str, str]] = OrderedDict()
        self._size = memory

    def _remember(self, table: OrderedDict[str, Any], key: str, value: Any) -> None:
        table[key] = value
        table.move_to_end(key)
        if len(table) > self._size:
            table.popitem(last=False)

    def feed(self, event: Event) -> list[Observation]:
        name = event.name
        if event.format == "xml" or name not in self.WANTED_EVENTS:
            return []
        return self.feed_variables(name, variables_from_event(event.headers))

    def feed_variables(self, name: str, v: Mapping[str, str]) -> list[Observation]:
        """One event's worth of channel variables (from ESL, or a CDR read back as if it were the event)."""
        uuid = v.get("uuid")
        if not uuid or uuid in self._decided:
            return []
        self.memory.learn(v)
        if name == "CHANNEL_HANGUP":
            self._remember(self._pending, uuid, v)
            return []
        if name not in self.DECIDING_EVENTS:
            return []
        earlier = self._pending.pop(uuid, None)
        merged = {**earlier, **v} if earlier else v
        obs = observation_from_variables(merged, memory=self.memory, report_answered=self.report_answered)
        self._remember(self._decided, uuid, None)
        if obs is None:
            return []
        self.memory.record(merged, obs)
        return [obs]


def iter_events(data: bytes, wanted_events: Iterable[str] | None = None) -> Iterable[Event]:
    """The events of a raw capture (plain or JSON), through the same parser the live listener uses; with
    ``wanted_events`` only those are decoded (the rest are skipped unread, as the listener does)."""
    for frame in EslParser(wanted_events).feed(data):
        if isinstance(frame, Event):
            yield frame


def annotate_events(events: Iterable[Event], resolve: Callable[[Observation], Annotation],
                    observer: FreeswitchObserver | None = None, catalog: str | None = None) -> list[Annotation]:
    """The listener's path: events -> observer -> (optional forced catalog) -> resolver."""
    observer = observer or FreeswitchObserver()
    out: list[Annotation] = []
    for event in events:
        for obs in observer.feed(event):
            if catalog:
                obs = replace(obs, catalog=catalog)
            out.append(resolve(obs))
    return out


def replay(data: bytes, resolver: Any, catalog: str | None = None) -> list[Annotation]:
    """Annotations for every leg in a raw ESL capture, failed and answered, exactly as the live listener would
    produce them (and store them: ``replay --store``)."""
    return annotate_events(iter_events(data, FreeswitchObserver.WANTED_EVENTS), resolver.resolve,
                           observer=FreeswitchObserver(report_answered=True), catalog=catalog)


__all__ = [
    "Attempt", "CallMemory", "FREESWITCH_CAUSES", "FreeswitchObserver", "HANGUP_CAUSE_Q850", "HOOK_VARIABLES",
    "NO_RESPONSE_OUTCOMES", "annotate_events", "cause_name", "cause_q850", "hangup_side", "is_failure",
    "iter_events", "observation_from_variables", "observed_causes", "observed_q850", "parent_of", "reason_q850",
    "replay", "sip_code_and_phrase", "trunk_of", "variables_from_event",
]
