"""The FastAGI handlers: ``annotate`` (write the reason into the CDR) and ``lookup`` (answer the dialplan).

``annotate`` runs from the A-leg's hangup handler, the one place where a program outside Asterisk can still write
the CDR dependably: the channel waits for us, and ``GET FULL VARIABLE`` and ``SET VARIABLE CDR(x)`` still answer
``200`` on the hung-up channel.

The contract with the shipped dialplan (``asterisk/extensions_pbx_codes.conf``) is positional::

    AGI(agi://127.0.0.1:4573/annotate,<B-leg channel>,<DIALSTATUS>,<catalog>,<trunk>)

``name=value`` arguments and URL parameters (``bleg=``, ``catalog=``, ``trunk=``, ``lang=``) win over the
positional ones, so a hand-written dialplan can name only what it knows; a bare ``AGI(.../annotate)`` works too
(the dialed leg is then the one ``${HANGUPCAUSE_KEYS()}`` names). What is read from the channel, in one
``GET FULL VARIABLE`` round trip when there is one dialed leg (one more per leg when there are several):

- ``${HANGUPCAUSE(<bleg>,tech)}`` (``SIP 409 Not enough money``): the carrier's code and its own phrase, read here
  rather than from the dialplan's ``PBX_CODES_RAWCAUSE`` copy so that a dialplan without it works the same;
- the dialed leg's Q.850 cause: ``${HANGUPCAUSE(<bleg>,ast)}`` when the leg is named positionally (Asterisk
  answers with the cause's description, ``Temporary failure``, mapped back to 41 by `asterisk_cause_q850`), else the
  calling channel's own ``${HANGUPCAUSE}``, which for a failed Dial is Asterisk's translation of DIALSTATUS;
- ``${DIALSTATUS}``, ``${CHANNEL(hangupsource)}`` and ``${PBX_CODES_CATALOG}``.

The catalog is the first one the resolver knows among: the ``catalog=`` parameter, the positional catalog (the
dialplan's choice: the calling channel's ``PBX_CODES_CATALOG``, else the trunk endpoint's, else the trunk name),
``${PBX_CODES_CATALOG}`` and the configured default; when none is known the resolver's trunk bindings decide.

It then sets ``CDR(pbx_catalog)``, ``CDR(pbx_code)``, ``CDR(pbx_phrase)``, ``CDR(pbx_category)``,
``CDR(pbx_retry)``, ``CDR(pbx_reason)``, ``CDR(pbx_q850)``, ``CDR(pbx_exact)``. A cancelled call is written as
487 (the leg's last tech cause is only a provisional), an answered one as 200 (category ``ok``). Every value is one
line of at most `max_bytes` UTF-8 bytes (`safe_value`) and quoted by `build_command`, so a carrier's phrase cannot
add a command. Commands go one at a time: Asterisk does not read pipelined AGI commands reliably.

``lookup`` (``AGI(agi://127.0.0.1/lookup?code=503&phrase=...&catalog=lifecell)``) sets channel variables
``pbx_category``, ``pbx_retry``, ``pbx_reason``, ... so a dialplan can branch on ``${pbx_retry}`` = failover.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol

from pbx_codes.adapters.agi_server import AgiSession, Handler
from pbx_codes.model import Observation, Side
from pbx_codes.observers.asterisk import PBX, parse_tech_cause, trunk_of
from pbx_codes.observers.asterisk_causes import asterisk_cause_q850
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
              "pbx_exact")


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
    }




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


def annotate_args(session: AgiSession) -> AnnotateArgs:
    """The request's arguments under the shipped contract; invalid names are dropped, never evaluated."""
    request = session.request
    positional = [arg for arg in request.args if "=" not in arg]
    positional += [""] * (4 - len(positional))
    named_bleg = request.param("bleg")
    bleg = named_bleg if named_bleg is not None else (positional[0] or None)
    if bleg is not None and not _CHANNEL_NAME.match(bleg):
        log.info("AGI annotate: ignoring an invalid bleg argument")
        bleg = None
    catalogs = tuple(c for c in (request.param("catalog"), positional[2]) if c and _CATALOG_ID.match(c))
    trunk = request.param("trunk") or positional[3] or None
    if trunk is not None and not _CATALOG_ID.match(trunk):
        trunk = None
    status = positional[1].strip().upper()
    return AnnotateArgs(bleg, status if status.isalpha() else None, catalogs, trunk,
                        named_bleg is None and bleg is not None)


def _known(resolver: Any, catalog: str) -> bool:
    catalogs = getattr(resolver, "catalogs", None)
    return catalogs is None or catalog in catalogs


async def read_observation(session: AgiSession, default_catalog: str | None = None,
                           resolver: Any = None) -> Observation | None:
    """What the hung-up A-leg knows about its dialed leg, read with as few round trips as possible."""
    request = session.request
    args = annotate_args(session)
    wanted = args.bleg
    # One round trip for the common case: the dialed leg's tech cause goes last (it is network text and may hold
    # the separator), evaluated for the given bleg or for the only key. Several keys need one GET each below.
    tech_expr = f"${{HANGUPCAUSE({wanted},tech)}}" if wanted else "${HANGUPCAUSE(${HANGUPCAUSE_KEYS()},tech)}"
    cause_expr = f"${{HANGUPCAUSE({wanted},ast)}}" if args.positional_bleg else "${HANGUPCAUSE}"
    combined = await session.get_full_variable(SEPARATOR.join((
        "${HANGUPCAUSE_KEYS()}", "${DIALSTATUS}", "${CHANNEL(hangupsource)}", "${PBX_CODES_CATALOG}",
        cause_expr, tech_expr)))
    parts = (combined or "").split(SEPARATOR, 5)
    parts += [""] * (6 - len(parts))
    keys_text, dial_status, source, catalog_var, cause = (p.strip() for p in parts[:5])
    first_tech = parts[5]
    keys = [k.strip() for k in keys_text.split(",") if _CHANNEL_NAME.match(k.strip())][:MAX_KEYS]
    candidates = [wanted] if wanted else [k for k in keys if not k.startswith("Local/")] or keys
    bleg = candidates[0] if candidates else None
    code = phrase = None
    dial_status = dial_status.upper() or args.dial_status or None
    if wanted or len(keys) == 1:
        code, phrase = parse_tech_cause(first_tech)
    else:
        for candidate in candidates:
            value = await session.get_full_variable(f"${{HANGUPCAUSE({candidate},tech)}}")
            tech_code, tech_phrase = parse_tech_cause(value)
            if tech_code is not None and int(tech_code) >= 300:
                bleg, code, phrase = candidate, tech_code, tech_phrase
                break
    if code is not None and int(code) < 300 and not (code == "200" and dial_status == "ANSWER"):
        code = phrase = None  # a provisional (the leg was cancelled while ringing) is not the outcome
    if code is None and dial_status == "CANCEL":
        code = "487"  # the caller cancelled: the dialed leg's last tech cause is only a provisional
    elif code is None and dial_status == "ANSWER":
        code = "200"
    if dial_status == "CANCEL":
        hangup_by = Side.CALLER
    elif code is not None and int(code) >= 300:
        hangup_by = Side.CARRIER  # the carrier's final answer ended the leg, whoever closed the calling channel
    else:
        hangup_by = _hangup_by(source, bleg, request.channel)
    named = [*args.catalogs, *([catalog_var] if catalog_var and _CATALOG_ID.match(catalog_var) else []),
             *([default_catalog] if default_catalog else [])]
    catalog = next((c for c in named if _known(resolver, c)), None)
    return Observation(
        sip_code=code, phrase=phrase, q850=_cause(cause), catalog=catalog, trunk=args.trunk or trunk_of(bleg),
        hangup_by=hangup_by, pbx=PBX, call_id=request.env.get("agi_linkedid") or request.uniqueid, leg_id=None,
        channel=bleg, number=request.env.get("agi_dnid") or None, dial_status=dial_status,
    )


def make_annotate(resolver: SupportsResolve, settings: WritebackSettings = WritebackSettings(),
                  default_catalog: str | None = None, on_annotation: Any = None) -> Handler:
    """The ``annotate`` handler bound to a resolver. `on_annotation(annotation)` (e.g. `bus.publish`) is optional."""
    async def annotate(session: AgiSession) -> None:
        obs = await read_observation(session, default_catalog, resolver)
        if obs is None:
            return
        annotation = resolver.resolve(obs)
        if on_annotation is not None:
            on_annotation(annotation)
        language = session.request.param("lang") or settings.language
        for name, value in annotation_fields(annotation, language).items():
            await session.set_variable(f"CDR({name})", safe_value(value, settings.max_bytes))

    return annotate


def make_lookup(resolver: SupportsResolve, settings: WritebackSettings = WritebackSettings()) -> Handler:
    """The ``lookup`` handler: resolve the code/phrase given in the URL and set channel variables for the dialplan."""
    async def lookup(session: AgiSession) -> None:
        request = session.request
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
                default_catalog: str | None = None, on_annotation: Any = None) -> dict[str, Handler]:
    """The FastAGI routes this project serves."""
    return {
        "annotate": make_annotate(resolver, settings, default_catalog, on_annotation),
        "lookup": make_lookup(resolver, settings),
    }


__all__ = ["AnnotateArgs", "CDR_FIELDS", "MAX_WRITEBACK_BYTES", "annotate_args", "WritebackSettings", "annotation_fields", "make_annotate", "make_lookup", "make_routes",
           "read_observation"]
