"""The Asterisk observer over every real capture: one observation per failed leg, with the carrier's code."""
from __future__ import annotations

import base64
import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from pbx_codes.catalog import load_catalogs
from pbx_codes.model import Observation, Side
from pbx_codes.observers.asterisk import AsteriskObserver, observe_stream, parse_tech_cause, replay, trunk_of
from pbx_codes.protocols.ami import AmiParser, Event
from pbx_codes.resolve import Resolver
from support.paths import FIXTURES as FIXTURES_ROOT

FIXTURES = FIXTURES_ROOT / "asterisk"
CAPTURES = sorted(FIXTURES.glob("*.ami.txt"))
# The Q.850 cause Asterisk 22 maps each carrier answer to (480 with a Reason header saying 17 still gives 19).
Q850 = {"486": 17, "480": 19, "404": 1, "503": 34, "409": 41, "603": 21, "488": 58, "487": 127}
PHRASES = {"money409": "Not enough money", "limit503": "Simultaneous calls limit reached", "busy486": "Busy Here",
           "declined603": "Declined", "notfound404": "Not Found", "reason480q850": "Temporarily Unavailable"}


def scenario(path: Path) -> str:
    return path.name.split(".")[0]


def expected_code(name: str) -> str:
    return re.search(r"\d{3}", name).group(0)


def check(name: str, observations: list[Observation]) -> None:
    assert len(observations) == 1, observations
    (obs,) = observations
    code = expected_code(name)
    assert obs.sip_code == code
    assert obs.q850 == Q850[code]
    assert obs.pbx == "asterisk"
    assert obs.trunk == "trunk"
    assert obs.channel and obs.channel.startswith("PJSIP/trunk-")
    assert obs.call_id and obs.leg_id and obs.timestamp
    if name in PHRASES:
        assert obs.phrase == PHRASES[name]
    if name.startswith("origdirect"):
        assert obs.phrase is None  # nobody could Getvar: there is no A-leg
    if name == "cancel487":
        assert obs.hangup_by is Side.CALLER and obs.dial_status == "CANCEL" and obs.phrase is None
    else:
        assert obs.hangup_by is Side.CARRIER


@pytest.mark.parametrize("path", CAPTURES, ids=scenario)
def test_capture_fed_whole(path: Path) -> None:
    check(scenario(path), observe_stream(path.read_bytes()))


@pytest.mark.parametrize("path", CAPTURES, ids=scenario)
def test_capture_fed_byte_by_byte(path: Path) -> None:
    data = path.read_bytes()
    check(scenario(path), observe_stream(data, chunks=(data[i:i + 1] for i in range(len(data)))))


@pytest.mark.parametrize("path", CAPTURES, ids=scenario)
def test_capture_split_inside_a_utf8_character(path: Path) -> None:
    data = path.read_bytes().replace(b"ChannelStateDesc: ", "ChannelStateDesc: Стан ".encode())
    cuts = [i + 1 for i in range(len(data)) if data[i] == 0xD0]  # the middle of each two-byte character
    bounds = [0, *cuts, len(data)]
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    assert len(chunks) > 10
    check(scenario(path), observe_stream(data, chunks=chunks))


def test_declined_is_reported_with_the_carrier_code_not_dial_status() -> None:
    (obs,) = observe_stream((FIXTURES / "declined603.ami.txt").read_bytes())
    assert obs.dial_status == "NOANSWER" and obs.sip_code == "603"


def test_provisional_tech_cause_is_never_taken_as_the_phrase() -> None:
    (obs,) = observe_stream((FIXTURES / "cancel487.ami.txt").read_bytes())
    assert obs.phrase is None and obs.sip_code == "487"


class EchoResolver:
    """Stands for the resolver: returns the observation it was given."""

    def __init__(self) -> None:
        self.seen: list[Observation] = []

    def resolve(self, obs: Observation) -> Observation:
        self.seen.append(obs)
        return obs


def test_replay_resolves_every_failed_leg_once_with_the_catalog() -> None:
    resolver = EchoResolver()
    out = replay((FIXTURES / "money409.ami.txt").read_bytes(), resolver, catalog="lifecell")
    assert out == resolver.seen
    assert [(o.sip_code, o.phrase, o.catalog) for o in out] == [("409", "Not enough money", "lifecell")]


def _events(name: str) -> list[Event]:
    return [m for m in AmiParser().feed((FIXTURES / name).read_bytes()) if isinstance(m, Event)]


def test_observer_asks_for_the_phrase_on_the_a_leg_and_waits_for_the_answer() -> None:
    observer = AsteriskObserver()
    emitted: list[Observation] = []
    fetches = []
    for event in _events("busy486.ami.txt"):
        emitted += observer.on_event(event)
        fetches += observer.take_fetches()
        if event.name == "Hangup" and event.get("Channel", "").startswith("PJSIP/trunk"):
            assert emitted == []  # the phrase is still being fetched
            emitted += observer.on_phrase(fetches[0].variable, "SIP 486 Operator says no")
    (fetch,) = fetches
    assert fetch.a_channel.startswith("PJSIP/caller-") and fetch.b_channel.startswith("PJSIP/trunk-")
    assert fetch.variable == f"HANGUPCAUSE({fetch.b_channel},tech)"
    (obs,) = emitted
    assert obs.phrase == "Operator says no"
    assert observer.pending_legs == 0


def test_a_leg_hangup_ends_the_wait_without_a_phrase() -> None:
    observer = AsteriskObserver()
    emitted: list[Observation] = []
    for event in _events("money409.ami.txt"):
        emitted += observer.on_event(event)
        observer.take_fetches()
    (obs,) = emitted
    assert obs.sip_code == "409" and obs.phrase is None


def test_late_phrase_answer_after_emission_is_ignored() -> None:
    observer = AsteriskObserver()
    for event in _events("money409.ami.txt"):
        observer.on_event(event)
    assert observer.on_phrase("HANGUPCAUSE(PJSIP/trunk-00000009,tech)", "SIP 409 x") == []


def _answered_call() -> bytes:
    frames = [
        "Event: DialBegin\r\nUniqueid: 1.1\r\nLinkedid: 1.1\r\nChannel: PJSIP/a-00000001\r\n"
        "DestUniqueid: 1.2\r\nDestChannel: PJSIP/trunk-00000002\r\nDialString: 100@trunk\r\n",
        "Event: DialEnd\r\nUniqueid: 1.1\r\nDestUniqueid: 1.2\r\nDialStatus: ANSWER\r\n",
        "Event: HangupRequest\r\nUniqueid: 1.2\r\nLinkedid: 1.1\r\nCause: 16\r\n",
        "Event: Hangup\r\nUniqueid: 1.2\r\nLinkedid: 1.1\r\nChannel: PJSIP/trunk-00000002\r\nCause: 16\r\n",
        "Event: Hangup\r\nUniqueid: 1.1\r\nLinkedid: 1.1\r\nChannel: PJSIP/a-00000001\r\nCause: 16\r\n",
    ]
    return "\r\n".join(frames).encode() + b"\r\n"


def test_answered_normal_clearing_is_not_a_failure() -> None:
    assert observe_stream(_answered_call()) == []


def test_duplicate_hangup_events_report_once() -> None:
    data = (FIXTURES / "origdirect486.ami.txt").read_bytes()
    hangup = data[data.index(b"Event: Hangup\r\n"):]
    hangup = hangup[:hangup.index(b"\r\n\r\n") + 4]
    assert len(observe_stream(data + hangup + hangup)) == 1


@pytest.mark.parametrize("channel, trunk", [("PJSIP/trunk-00000009", "trunk"), ("SIP/lifecell-0000abcd", "lifecell"),
                                            ("PJSIP/my-trunk-0000001a", "my-trunk"), ("Local/486@x-00000000;2", None),
                                            ("weird", None), (None, None)])
def test_trunk_of_channel_names(channel, trunk) -> None:
    assert trunk_of(channel) == trunk


def test_tech_cause_phrase_is_cleaned_of_control_characters() -> None:
    assert parse_tech_cause("SIP 409 Not\r\nenough\x00money") == ("409", "Not enough money")
    assert parse_tech_cause("SIP 486") == ("486", None)
    assert parse_tech_cause("garbage") == (None, None)


def test_real_resolver_categories() -> None:
    resolver = Resolver(load_catalogs(), bindings={}, default_catalog="sip")
    categories = {}
    for name in ("busy486", "cancel487", "money409", "limit503"):
        (annotation,) = replay((FIXTURES / f"{name}.ami.txt").read_bytes(), resolver)
        categories[name] = annotation.to_dict()["category"]
        assert annotation.to_dict()["uniqueid"] and annotation.to_dict()["linkedid"]
    assert categories["busy486"] == "busy"
    assert categories["cancel487"] == "cancelled"


def test_answered_legs_are_reported_as_200_only_when_asked() -> None:
    """The live listener reports answered legs (the failure rate's denominator); replay reports failures only."""
    from pbx_codes.observers.asterisk import AsteriskObserver
    from pbx_codes.protocols.ami import Event as AmiEvent

    def ev(name: str, **headers: str) -> AmiEvent:
        return AmiEvent(name, "\r\n".join([f"Event: {name}", *(f"{k}: {v}" for k, v in headers.items())]))

    stream = [
        ev("DialBegin", Uniqueid="a.1", Linkedid="a.1", Channel="PJSIP/caller-1", DestUniqueid="b.1",
           DestChannel="PJSIP/trunk-00000001", DestLinkedid="a.1", DialString="200@trunk"),
        ev("DialEnd", Uniqueid="a.1", DestUniqueid="b.1", DialStatus="ANSWER"),
        ev("HangupRequest", Uniqueid="b.1", Linkedid="a.1", Channel="PJSIP/trunk-00000001", Cause="16"),
        ev("Hangup", Uniqueid="b.1", Linkedid="a.1", Channel="PJSIP/trunk-00000001", Cause="16"),
    ]
    for report, expected in ((False, []), (True, [("200", "ANSWER", "b.1")])):
        observer = AsteriskObserver(fetch_phrases=False, report_answered=report)
        got = [obs for event in stream for obs in observer.on_event(event)] + observer.flush()
        assert [(o.sip_code, o.dial_status, o.leg_id) for o in got] == expected


@pytest.mark.parametrize("dial_string", ["409@trunk", "PJSIP/+380501234567@lifecell", "*21#@t&PJSIP/x@y",
                                         "  409 @trunk", "40\t9@trunk", "номер@trunk", "9" * 80 + "@trunk", "",
                                         "Local/486@x/n", "a\u202eb@trunk"])
def test_dialed_number_is_what_safe_value_makes_of_it(dial_string) -> None:
    """The observer skips safe_value's general path for plain numbers; the answer must not change."""
    from pbx_codes.observers.asterisk import _number
    from pbx_codes.protocols import safe_value

    target = dial_string.split("&", 1)[0].split(",", 1)[0].rsplit("/", 1)[-1].split("@", 1)[0]
    assert _number(dial_string) == (safe_value(target, 64) or None)


def test_legs_of_one_shape_share_a_verdict_and_other_shapes_get_their_own() -> None:
    """The observer keeps decide()'s verdicts per leg shape: every capture replayed in one observer, twice over,
    gives each leg what it gets alone."""
    alone = {path.name: observe_stream(path.read_bytes()) for path in CAPTURES}
    parser, observer, together = AmiParser(), AsteriskObserver(), []
    for path in CAPTURES * 2:
        for message in parser.feed(path.read_bytes().split(b"\r\n", 1)[1]):
            if isinstance(message, Event):
                together.extend(observer.on_event(message))
                observer.take_fetches()
            else:
                together.extend(observer.on_response(message))
    together.extend(observer.flush())
    expected = [obs for name in sorted(alone) for obs in alone[name]] * 2
    assert [(o.sip_code, o.phrase, o.q850, o.outcome, o.certain, o.hangup_by) for o in together] == \
        [(o.sip_code, o.phrase, o.q850, o.outcome, o.certain, o.hangup_by) for o in expected]


def _leg_event(uniqueid: str, catalog: str, name: str = "PbxCodesLeg") -> Event:
    """What the shipped predial step's ``UserEvent(PbxCodesLeg,Catalog: ...)`` looks like on the wire."""
    return Event("UserEvent", "\r\n".join(("Event: UserEvent", "Privilege: user,all", "Channel: PJSIP/trunk-0000000x",
                                           f"Uniqueid: {uniqueid}", f"UserEvent: {name}", f"Catalog: {catalog}")))


def _busy486_with(extra: list[Event]) -> list[Observation]:
    """The busy486 capture with `extra` events played just before the dialed leg's DialBegin."""
    observer = AsteriskObserver(catalog="sip")
    emitted: list[Observation] = []
    for event in _events("busy486.ami.txt"):
        if event.name == "DialBegin":
            for leg_event in extra:
                emitted += observer.on_event(leg_event)
        emitted += observer.on_event(event)
    emitted += observer.flush()
    return emitted


def test_the_predial_steps_catalog_names_the_legs_catalog_over_the_configured_one() -> None:
    b_uid = next(e.get("DestUniqueid") for e in _events("busy486.ami.txt") if e.name == "DialBegin")
    (obs,) = _busy486_with([_leg_event(b_uid, "lifecell")])
    assert obs.catalog == "lifecell"
    (plain,) = _busy486_with([])
    assert plain.catalog == "sip"


@pytest.mark.parametrize("catalog, name", [("life cell", "PbxCodesLeg"), ("x" * 65, "PbxCodesLeg"),
                                           ("", "PbxCodesLeg"), ("lifecell", "SomeoneElsesEvent")])
def test_a_user_event_that_is_not_a_plain_catalog_id_from_the_predial_step_changes_nothing(catalog, name) -> None:
    b_uid = next(e.get("DestUniqueid") for e in _events("busy486.ami.txt") if e.name == "DialBegin")
    (obs,) = _busy486_with([_leg_event(b_uid, catalog, name)])
    assert obs.catalog == "sip"


def _leg_cause_event(uniqueid: str, tech: str | None = None, raw_tech64: str | None = None) -> Event:
    """What the shipped leg hangup handler's ``UserEvent(PbxCodesLegCause,Tech64: ...)`` looks like on the wire."""
    tech64 = raw_tech64 if raw_tech64 is not None else base64.b64encode((tech or "").encode()).decode()
    return Event("UserEvent", "\r\n".join(("Event: UserEvent", "Privilege: user,all", "Channel: PJSIP/trunk-0000000x",
                                           f"Uniqueid: {uniqueid}", "UserEvent: PbxCodesLegCause",
                                           f"Tech64: {tech64}")))


def _play_with_leg_cause(name: str, leg_events: dict[str, Event | None]) -> tuple[list[Observation], list[Any]]:
    """A capture played live-style (fetches answered as the listener does); `leg_events` maps a dialed leg's
    uniqueid to the event its hangup handler raises just before that leg's Hangup."""
    observer = AsteriskObserver(fetches_always_answered=True)
    emitted: list[Observation] = []
    fetches: list[Any] = []
    for event in _events(name):
        if event.name == "Hangup" and event.get("Uniqueid") in leg_events:
            told = leg_events[event.get("Uniqueid") or ""]
            if told is not None:
                emitted += observer.on_event(told)
        emitted += observer.on_event(event)
        fetches += observer.take_fetches()
    return emitted, fetches


def _dialed(name: str) -> list[str]:
    return [e.get("DestUniqueid") or "" for e in _events(name) if e.name == "DialBegin"]


def test_the_legs_own_status_line_is_the_phrase_and_no_getvar_is_left_waiting() -> None:
    # Dial's copy on the calling channel was lost (the race this event closes): the leg's own copy decides.
    (b_uid,) = _dialed("busy486.ami.txt")
    emitted, fetches = _play_with_leg_cause(
        "busy486.ami.txt", {b_uid: _leg_cause_event(b_uid, "SIP 486 Operator, says no")})
    (obs,) = emitted  # emitted at the leg's Hangup, without waiting for the early Getvar's answer
    assert (obs.sip_code, obs.phrase, obs.certain) == ("486", "Operator, says no", True)
    assert len(fetches) <= 1  # at most the early question, asked before any leg had told


def test_once_a_leg_has_told_later_legs_are_not_asked_early_and_one_that_does_not_tell_is_asked_at_hangup() -> None:
    observer = AsteriskObserver(fetches_always_answered=True)
    (first_uid,) = _dialed("money409.ami.txt")
    for event in _events("money409.ami.txt"):  # the first call's leg tells its status line
        if event.name == "Hangup" and event.get("Uniqueid") == first_uid:
            observer.on_event(_leg_cause_event(first_uid, "SIP 409 Not enough money"))
        observer.on_event(event)
        observer.take_fetches()
    assert observer.legs_tell
    asked_at: list[str] = []
    emitted: list[Observation] = []
    for event in _events("busy486.ami.txt"):  # a leg dialled another way: no event
        emitted += observer.on_event(event)
        asked_at += [event.name for _ in observer.take_fetches()]
    assert asked_at == ["Hangup"]  # asked once, settled, at its Hangup; not at its HangupRequest
    assert emitted == []  # and it waits for that answer


@pytest.mark.parametrize("tech64", ["not base64!", "@@@@"])
def test_a_leg_cause_event_that_is_not_base64_changes_nothing(tech64: str) -> None:
    (b_uid,) = _dialed("busy486.ami.txt")
    emitted, fetches = _play_with_leg_cause("busy486.ami.txt", {b_uid: _leg_cause_event(b_uid, raw_tech64=tech64)})
    assert emitted == [] and fetches  # still waiting for Getvar, as without the event


def test_the_legs_own_status_line_is_cleaned_of_line_breaks() -> None:
    (b_uid,) = _dialed("busy486.ami.txt")
    emitted, _ = _play_with_leg_cause(
        "busy486.ami.txt", {b_uid: _leg_cause_event(b_uid, "SIP 486 Busy\r\nEvent: Forged\r\n")})
    (obs,) = emitted
    assert obs.sip_code == "486" and obs.phrase is not None
    assert "\r" not in obs.phrase and "\n" not in obs.phrase and obs.phrase.startswith("Busy")


def test_an_empty_status_line_from_the_leg_means_the_carrier_never_answered() -> None:
    (b_uid,) = _dialed("busy486.ami.txt")
    emitted, _ = _play_with_leg_cause("busy486.ami.txt", {b_uid: _leg_cause_event(b_uid, "")})
    (obs,) = emitted
    assert obs.phrase is None
