"""The FastAGI handlers: ``annotate`` (write the reason into the CDR) and ``lookup`` (answer the dialplan).

``annotate`` runs from the A-leg's hangup handler, the one place where a program outside Asterisk can still write
the CDR dependably: the channel waits for us, and ``GET FULL VARIABLE`` and ``SET VARIABLE CDR(x)`` still answer
``200`` on the hung-up channel.

The contract with the shipped dialplan (``asterisk/extensions_pbx_codes.conf``) is positional::

    AGI(agi://127.0.0.1:4573/annotate,<B-leg channel>,<DIALSTATUS>,<catalog>,<trunk>)

``name=value`` arguments and URL parameters (``bleg=``, ``catalog=``, ``trunk=``, ``lang=``) win over the
positional ones, so a hand-written dialplan can name only what it knows; a bare ``AGI(.../annotate)`` works too
(the dialed leg is then the one ``${HANGUPCAUSE_KEYS()}`` names, else the CDR's ``dstchannel``). An empty leg
argument means Dial created no leg (qualify said Unavailable): the attempt is ``unreachable``. What is read:

- one ``GET FULL VARIABLE`` for the calling channel's own values: ``${HANGUPCAUSE_KEYS()}``, ``${DIALSTATUS}``,
  ``${CHANNEL(hangupsource)}``, ``${PBX_CODES_CATALOG}``, ``${HANGUPCAUSE}``, the attempts so far, and the leg
  name and Q.850 cause its own hangup handler left (``SHARED(PBX_CODES_LEG_CHANNEL)``, ``..._CAUSE``);
- when that handler told this leg (the shipped dialplan): one more for the leg's own last status line,
  ``SHARED(PBX_CODES_LEG_TECH)`` (``SIP 409 Not enough money``). Dial's copy of it on the calling channel can be
  missing on a busy PBX (the dialplan's ``[pbx-codes-leg-hangup]`` says why); the leg's own is not;
- otherwise one more, only for a leg the keys list (for any other Asterisk logs a WARNING):
  ``${HANGUPCAUSE(<bleg>,ast)}``, the leg's Q.850 cause (as its description, ``Temporary failure``, mapped back to
  41 by `asterisk_cause_q850`), and ``${HANGUPCAUSE(<bleg>,tech)}``, the carrier's code and its own phrase, read
  here rather than from the dialplan's ``PBX_CODES_RAWCAUSE`` copy so that a dialplan without it works the same.

`pbx_codes.observers.asterisk_outcome.decide`, the table the AMI listener uses too, turns them into the code and
how the attempt ended. The catalog is the first one the resolver knows among: the ``catalog=`` parameter, the
positional catalog (the dialplan's choice: the calling channel's ``PBX_CODES_CATALOG``, else the trunk endpoint's,
else the trunk name), ``${PBX_CODES_CATALOG}`` and ``[asterisk] catalog``; when none is known the resolver's trunk
bindings, then its default, decide (the AMI listener chooses a leg's catalog the same way).

It then sets ``CDR(x)`` for every name of `CDR_FIELDS` and ``CDR(pbx_attempts)``: the plain values (codes,
categories, numbers) in one ``EXEC MSet``, the free text (phrase, reason) with ``SET VARIABLE``. Every value is one
line of at most `max_bytes` UTF-8 bytes (`safe_value`) and quoted by `build_command`, so a carrier's phrase cannot
add a command. Commands go one at a time: Asterisk does not read pipelined AGI commands reliably.

``lookup`` (``AGI(agi://127.0.0.1/lookup?code=503&phrase=...&catalog=lifecell)``) sets channel variables
``pbx_category``, ``pbx_retry``, ``pbx_reason``, ... so a dialplan can branch on ``${pbx_retry}`` = failover;
without ``code=`` it reads the attempt that just ended, as ``annotate`` does (the failover example).
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, replace
from typing import Any, Protocol

from pbx_codes.adapters.agi_server import AgiSession, Handler
from pbx_codes.model import Observation, Side
from pbx_codes.observers.asterisk import PBX, parse_tech_cause, trunk_of
from pbx_codes.observers.asterisk_causes import asterisk_cause_q850
from pbx_codes.observers.asterisk_outcome import LegFacts, decide
from pbx_codes.protocols import MAX_VALUE_BYTES, safe_value, small_int

log = logging.getLogger(__name__)

#: Separates the values of the combined GET; only Asterisk-made values (channel names, statuses, numbers) and the
#: configured catalog id sit between separators, never network text.
SEPARATOR = "|~|"
#: A channel name we are willing to put inside ``${HANGUPCAUSE(...)}``: no ``$``, braces, parentheses or commas.
_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9_.@:+/;#-]{1,128}$")
_CATALOG_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_KEYS = 8

CDR_FIELDS = ("pbx_catalog", "pbx_code", "pbx_phrase", "pbx_category", "pbx_retry", "pbx_reason", "pbx_q850",
              "pbx_exact", "pbx_hangup_by", "pbx_outcome", "pbx_q850_observed", "pbx_attempt")
#: The final record's list of every attempt of the call, in order (see `attempt_entry`).
ATTEMPTS_FIELD = "pbx_attempts"
#: Channel variables the handlers keep on the calling channel between the attempts of one call.
ATTEMPTS_VAR = "PBX_CODES_ATTEMPTS"
LOOKED_UP_VAR = "PBX_CODES_LOOKED_UP"
#: What the dialed leg's own hangup handler hands to the calling channel (SHARED): the leg's name, its Q.850 cause
#: and its last status line (``[pbx-codes-leg-hangup]`` in the shipped dialplan).
LEG_CHANNEL_VAR, LEG_CAUSE_VAR, LEG_TECH_VAR = "PBX_CODES_LEG_CHANNEL", "PBX_CODES_LEG_CAUSE", "PBX_CODES_LEG_TECH"
#: The calling channel's own values, read in the first GET in this order (see `read_call`). None is network text.
OWN_VALUES = ("${HANGUPCAUSE_KEYS()}", "${DIALSTATUS}", "${CHANNEL(hangupsource)}", "${PBX_CODES_CATALOG}",
              "${HANGUPCAUSE}", f"${{{ATTEMPTS_VAR}}}", f"${{{LOOKED_UP_VAR}}}", f"${{SHARED({LEG_CHANNEL_VAR})}}",
              f"${{SHARED({LEG_CAUSE_VAR})}}", "${CDR(dstchannel)}")


def own_values_expression(leg_told: bool) -> str:
    """The first GET's expression; the CDR's ``dstchannel`` only when the dialplan did not name the leg."""
    return SEPARATOR.join(OWN_VALUES if not leg_told else (*OWN_VALUES[:-1], ""))


#: At most this many attempts are listed (a dialplan looping on failover cannot grow the variable without bound).
MAX_ATTEMPTS = 16


class SupportsResolve(Protocol):
    def resolve(self, obs: Observation) -> Any: ...


#: The largest `WritebackSettings.max_bytes`: a value of that many quotes or backslashes, escaped (twice as long),
#: still fits one res_agi command line (`MAX_COMMAND_BYTES`) with ``SET VARIABLE CDR(pbx_category)`` before it.
MAX_WRITEBACK_BYTES = 1000


@dataclass(frozen=True, slots=True)
class WritebackSettings:
    """The language of ``pbx_reason`` and the size bound of every written value."""

    language: str = "en"
    max_bytes: int = MAX_VALUE_BYTES

    def __post_init__(self) -> None:
        if not 1 <= self.max_bytes <= MAX_WRITEBACK_BYTES:
            raise ValueError(f"agi max_bytes must be between 1 and {MAX_WRITEBACK_BYTES}: a longer value would not "
                             "fit one AGI command line")


def annotation_fields(annotation: Any, language: str) -> dict[str, str]:
    """The written variables of one annotation (names without the ``CDR()`` wrapper), as plain strings."""
    def text(value: object) -> str:
        if value is None:
            return ""
        return str(getattr(value, "value", value))

    return {
        "pbx_catalog": text(annotation.catalog),
        "pbx_code": text(annotation.code),
        "pbx_phrase": text(annotation.phrase),
        "pbx_category": text(annotation.category),
        "pbx_retry": text(annotation.retry),
        "pbx_reason": annotation.text(language),
        "pbx_q850": text(annotation.q850),
        "pbx_exact": "1" if annotation.exact else "0",
        "pbx_hangup_by": text(annotation.hangup_by),
        "pbx_outcome": text(annotation.observation.outcome),
        "pbx_q850_observed": text(annotation.observation.q850),
        "pbx_attempt": text(annotation.observation.attempt),
    }


def attempt_entry(annotation: Any) -> str:
    """One attempt in ``pbx_attempts``: ``n:trunk:code:category:retry:outcome``. Only Asterisk-made and catalog
    values, each checked against `_CATALOG_ID`, so no ``;`` or ``:`` can come from the network."""
    obs = annotation.observation
    parts = (obs.attempt, obs.trunk, annotation.code, annotation.category, annotation.retry, obs.outcome)
    texts = ("" if p is None else str(getattr(p, "value", p)) for p in parts)
    return ":".join(t if _CATALOG_ID.match(t) else "" for t in texts)


def _hangup_by(source: str | None, bleg: str | None, own_channel: str | None) -> Side:
    if not source:
        return Side.UNKNOWN
    if bleg and source == bleg:
        return Side.CARRIER
    if own_channel and source == own_channel:
        return Side.CALLER
    return Side.LOCAL


def _cause(text: str | None) -> int | None:
    """A Q.850 cause given as a number (``${HANGUPCAUSE}``) or as Asterisk's description of it."""
    if not text:
        return None
    number = small_int(text)
    return number if number is not None else asterisk_cause_q850(text)


@dataclass(frozen=True, slots=True)
class AnnotateArgs:
    """What the dialplan told the server, by name or by position (see the module docstring)."""

    bleg: str | None
    dial_status: str | None
    catalogs: tuple[str, ...]
    trunk: str | None
    positional_bleg: bool
    #: The dialplan passed the leg positionally, even as "": an empty one means Dial created no leg.
    leg_told: bool = False


def annotate_args(session: AgiSession) -> AnnotateArgs:
    """The request's arguments under the shipped contract; invalid names are dropped, never evaluated."""
    request = session.request
    positional = [arg for arg in request.args if "=" not in arg]
    told = len(positional) >= 2
    positional += [""] * (4 - len(positional))
    named_bleg = request.param("bleg")
    bleg = named_bleg if named_bleg is not None else (positional[0] or None)
    if bleg is not None and not _CHANNEL_NAME.match(bleg):
        log.info("AGI annotate: ignoring an invalid bleg argument")
        bleg = None
        told = False
    catalogs = tuple(c for c in (request.param("catalog"), positional[2]) if c and _CATALOG_ID.match(c))
    trunk = request.param("trunk") or positional[3] or None
    if trunk is not None and not _CATALOG_ID.match(trunk):
        trunk = None
    status = positional[1].strip().upper()
    return AnnotateArgs(bleg, status if status.isalpha() else None, catalogs, trunk,
                        named_bleg is None and bleg is not None, told or named_bleg is not None)


def _known(resolver: Any, catalog: str) -> bool:
    catalogs = getattr(resolver, "catalogs", None)
    return catalogs is None or catalog in catalogs


def _attempts(text: str) -> list[str]:
    return [entry for entry in text.split(";") if entry][:MAX_ATTEMPTS]


@dataclass(frozen=True, slots=True)
class CallState:
    """What the calling channel holds about the call's earlier attempts (failover)."""

    attempts: list[str]
    looked_up: str  # the leg the last ``lookup`` annotated ("-" for an attempt without a leg)


async def read_observation(session: AgiSession, default_catalog: str | None = None,
                           resolver: Any = None) -> Observation | None:
    """What the hung-up A-leg knows about its dialed leg (see `read_call`)."""
    obs, _ = await read_call(session, default_catalog, resolver)
    return obs


async def read_call(session: AgiSession, default_catalog: str | None = None,
                    resolver: Any = None) -> tuple[Observation, CallState]:
    """The dialed leg's observation and the call's attempts so far, in as few round trips as possible.

    The first GET reads the channel's own values; ``HANGUPCAUSE(<leg>,...)`` is evaluated only for a leg that
    ``HANGUPCAUSE_KEYS()`` lists (Asterisk logs a WARNING for any other), in one more GET.
    """
    request = session.request
    args = annotate_args(session)
    combined = await session.get_full_variable(own_values_expression(args.leg_told))
    parts = [p.strip() for p in (combined or "").split(SEPARATOR, len(OWN_VALUES) - 1)]
    parts += [""] * (len(OWN_VALUES) - len(parts))
    (keys_text, dial_status, source, catalog_var, own_cause, attempts_text, looked_up, told_leg, told_cause,
     dst) = parts
    keys = [k.strip() for k in keys_text.split(",") if _CHANNEL_NAME.match(k.strip())][:MAX_KEYS]
    state = CallState(_attempts(attempts_text), looked_up)
    dial: str | None = dial_status.upper() or args.dial_status or None
    if args.leg_told:
        bleg = args.bleg
        legs = [bleg] if bleg and bleg in keys else []
    else:
        legs = [k for k in keys if not k.startswith("Local/")] or keys
        bleg = legs[0] if legs else (dst if _CHANNEL_NAME.match(dst) else None)
    tech, cause = "", None
    if told_leg and _CHANNEL_NAME.match(told_leg) and (told_leg == bleg or told_leg in legs):
        # The leg's own hangup handler left its last status line (the shipped dialplan): whole even when Dial's
        # copy on this channel is not. Network text, so read alone.
        bleg, legs = told_leg, []
        tech = await session.get_full_variable(f"${{SHARED({LEG_TECH_VAR})}}") or ""
        cause = _cause(told_cause) or _cause(own_cause)
    for index, leg in enumerate(legs):
        # The cause first: the tech cause is network text and may hold the separator.
        value = await session.get_full_variable(f"${{HANGUPCAUSE({leg},ast)}}{SEPARATOR}${{HANGUPCAUSE({leg},tech)}}")
        ast_text, _, leg_tech = (value or "").partition(SEPARATOR)
        code, _ = parse_tech_cause(leg_tech)
        if index == 0 or (code is not None and int(code) >= 300):
            bleg, tech, cause = leg, leg_tech, _cause(ast_text.strip())
        if code is not None and int(code) >= 300:
            break  # several legs (parallel Dial): the one with a final answer is the outcome
    verdict = decide(LegFacts(dial, tech, has_leg=bool(bleg), cause=cause if bleg else _cause(own_cause),
                              hangup_by=_hangup_by(source, bleg, request.channel)))
    named = [*args.catalogs, *([catalog_var] if catalog_var and _CATALOG_ID.match(catalog_var) else []),
             *([default_catalog] if default_catalog else [])]
    catalog = next((c for c in named if _known(resolver, c)), None)
    return Observation(
        sip_code=verdict.code, phrase=verdict.phrase, q850=verdict.q850, catalog=catalog,
        trunk=args.trunk or trunk_of(bleg), hangup_by=verdict.hangup_by, pbx=PBX,
        call_id=request.env.get("agi_linkedid") or request.uniqueid, leg_id=None, channel=bleg,
        number=request.env.get("agi_dnid") or None, dial_status=dial, outcome=verdict.outcome,
        certain=verdict.certain, attempt=len(state.attempts) + (0 if _same_leg(state.looked_up, bleg) else 1),
        timestamp=time.time(),
    ), state


def _same_leg(looked_up: str, bleg: str | None) -> bool:
    return bool(looked_up) and looked_up == (bleg or "-")


#: A value MSet can carry as it is: no comma (MSet's separator), quote, bracket, ``$`` or space; Asterisk-made and
#: catalog values (codes, categories, numbers, the attempts list) are like this, network text often is not.
PLAIN_VALUE = re.compile(r"^[A-Za-z0-9_.:;/+-]{0,255}$")


async def _write(session: AgiSession, fields: dict[str, str], max_bytes: int, wrap: str) -> None:
    """Set every field: the plain values together in one ``EXEC MSet`` (one round trip instead of one each), the
    others, and all of them if MSet is refused, one ``SET VARIABLE`` each."""
    values = {wrap.format(name): safe_value(value, max_bytes) for name, value in fields.items()}
    plain = {name: value for name, value in values.items() if PLAIN_VALUE.match(value)}
    if len(plain) > 1:
        reply = await session.command("EXEC", "MSet", ",".join(f"{name}={value}" for name, value in plain.items()))
        if reply.ok and reply.result is not None and reply.result >= 0:  # -2: no such application
            values = {name: value for name, value in values.items() if name not in plain}
    for name, value in values.items():
        await session.set_variable(name, value)


def publishes(publish_all: bool, obs: Observation) -> bool:
    """With the AMI listener on, it publishes every leg it saw; only an attempt without a leg (no channel, no AMI
    event) is this path's to publish."""
    return publish_all or obs.channel is None


def make_annotate(resolver: SupportsResolve, settings: WritebackSettings = WritebackSettings(),
                  default_catalog: str | None = None, on_annotation: Any = None,
                  publish_all: bool = True) -> Handler:
    """The ``annotate`` handler bound to a resolver. `on_annotation(annotation)` (e.g. `bus.publish`) is optional;
    with ``publish_all=False`` only attempts that AMI cannot see are handed to it."""
    async def annotate(session: AgiSession) -> None:
        obs, state = await read_call(session, default_catalog, resolver)
        annotation = resolver.resolve(obs)
        again = _same_leg(state.looked_up, obs.channel)  # the failover's lookup already annotated this attempt
        if on_annotation is not None and not again and publishes(publish_all, obs):
            on_annotation(annotation)
        language = session.request.param("lang") or settings.language
        attempts = state.attempts if again else [*state.attempts, attempt_entry(annotation)]
        fields = annotation_fields(annotation, language)
        fields[ATTEMPTS_FIELD] = ";".join(attempts[:MAX_ATTEMPTS])
        await _write(session, fields, settings.max_bytes, "CDR({})")

    return annotate


def make_lookup(resolver: SupportsResolve, settings: WritebackSettings = WritebackSettings(),
                default_catalog: str | None = None, on_annotation: Any = None, publish_all: bool = True) -> Handler:
    """The ``lookup`` handler: resolve the code/phrase given in the URL and set channel variables for the dialplan.

    Without a ``code=`` parameter it annotates the attempt that just ended on the calling channel (the failover
    example, after each Dial): the same reading as ``annotate``, set as channel variables and remembered on the
    channel, so the hangup handler lists every attempt in order (``pbx_attempts``) in the call's last record.
    """
    async def attempt(session: AgiSession) -> None:
        obs, state = await read_call(session, default_catalog, resolver)
        obs = replace(obs, attempt=len(state.attempts) + 1)  # a lookup always follows a Dial of its own
        annotation = resolver.resolve(obs)
        if on_annotation is not None and publishes(publish_all, obs):
            on_annotation(annotation)
        language = session.request.param("lang") or settings.language
        fields = annotation_fields(annotation, language)
        # Channel variables only: Asterisk closed this Dial's CDR record when the Dial failed, so a CDR write now
        # would land in the next attempt's record. The hangup handler lists every attempt in the last record.
        await _write(session, fields, settings.max_bytes, "{}")
        await session.set_variable(ATTEMPTS_VAR, ";".join([*state.attempts, attempt_entry(annotation)][:MAX_ATTEMPTS]))
        await session.set_variable(LOOKED_UP_VAR, obs.channel or "-")

    async def lookup(session: AgiSession) -> None:
        request = session.request
        if request.param("code") is None:
            await attempt(session)
            return
        code = safe_value(request.param("code"), 16) or None
        phrase = safe_value(request.param("phrase"), 512) or None
        catalog = request.param("catalog")
        if catalog is not None and not _CATALOG_ID.match(catalog):
            catalog = None
        obs = Observation(sip_code=code, phrase=phrase, q850=small_int(request.param("q850")), catalog=catalog,
                          trunk=safe_value(request.param("trunk"), 64) or None, pbx=PBX)
        annotation = resolver.resolve(obs)
        language = request.param("lang") or settings.language
        for name, value in annotation_fields(annotation, language).items():
            await session.set_variable(name, safe_value(value, settings.max_bytes))

    return lookup


def make_routes(resolver: SupportsResolve, settings: WritebackSettings = WritebackSettings(),
                default_catalog: str | None = None, on_annotation: Any = None,
                publish_all: bool = True) -> dict[str, Handler]:
    """The FastAGI routes this project serves."""
    return {
        "annotate": make_annotate(resolver, settings, default_catalog, on_annotation, publish_all),
        "lookup": make_lookup(resolver, settings, default_catalog, on_annotation, publish_all),
    }


__all__ = ["PLAIN_VALUE", "publishes", "ATTEMPTS_FIELD", "AnnotateArgs", "CDR_FIELDS", "CallState", "attempt_entry",
           "read_call", "MAX_WRITEBACK_BYTES", "annotate_args", "WritebackSettings", "annotation_fields",
           "make_annotate", "make_lookup", "make_routes", "read_observation"]
