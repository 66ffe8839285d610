"""What every leg of every live2 capture (tests/fixtures/freeswitch/live2) must be annotated as, whichever path
annotates it: `replay`, the live listener, the hangup-hook endpoint, the CDR backfill.

Legs are named by their role in the capture's summary (``A``, ``B``, or ``B via <gateway>`` in a failover).
"""
from __future__ import annotations

import json
from typing import NamedTuple
from urllib.parse import urlencode

from pbx_codes.catalog import load_catalogs
from pbx_codes.model import Annotation
from pbx_codes.observers.freeswitch import HOOK_VARIABLES, iter_events, variables_from_event
from pbx_codes.resolve import Resolver
from support.paths import FIXTURES

LIVE2 = FIXTURES / "freeswitch" / "live2"


class Leg(NamedTuple):
    code: str | None
    category: str
    retry: str
    hangup_by: str
    outcome: str
    exact: bool
    catalog: str
    attempt: int | None = None


ANSWERED = Leg("200", "ok", "no", "carrier", "answered", True, "sip")
CLOSED_PORT = Leg("503", "network", "failover", "local", "unreachable", True, "sip")
TIMER = Leg("408", "network", "failover", "local", "local_response", True, "sip")
LIFECELL_503 = Leg("503", "capacity", "failover", "carrier", "carrier_final", True, "lifecell")
BUSY_GW2 = Leg("486", "busy", "later", "carrier", "carrier_final", True, "sip")

#: capture -> role -> the annotation (a missing capture has no leg: no channel was created at all).
EXPECTED: dict[str, dict[str, Leg]] = {
    "answered_carrier_bye.bridge": {"A": ANSWERED, "B": ANSWERED._replace(attempt=1)},
    "answered_carrier_bye.direct": {"B": ANSWERED._replace(attempt=1)},
    "caller_cancel.bridge": {
        "A": Leg("487", "cancelled", "no", "caller", "caller_cancel", True, "lifecell"),
        "B": Leg("487", "cancelled", "no", "caller", "caller_cancel", True, "lifecell", 1)},
    "caller_cancel.direct": {"B": Leg("487", "cancelled", "no", "local", "caller_cancel", True, "lifecell", 1)},
    "failover_503_then_486.bridge": {
        "B via lifecell": LIFECELL_503._replace(attempt=1), "B via lab_gw2": BUSY_GW2._replace(attempt=2),
        "A": BUSY_GW2},
    "failover_503_then_486.direct": {"B via lifecell": LIFECELL_503._replace(attempt=1),
                                     "B via lab_gw2": BUSY_GW2._replace(attempt=1)},
    "failover_503_then_486.direct_dup_uuid": {"B": LIFECELL_503._replace(attempt=1)},
    "gateway_down.bridge": {"A": CLOSED_PORT, "B": CLOSED_PORT._replace(attempt=1)},
    # no B-leg: A stands for the attempt on the gateway its bridge dialled
    "gateway_down.bridge_marked_down": {"A": Leg(None, "network", "failover", "local", "unreachable", False, "sip",
                                                 1)},
    "gateway_down.bridge_timeout": {"A": TIMER, "B": TIMER._replace(attempt=1)},
    "gateway_down.direct": {"B": CLOSED_PORT._replace(attempt=1)},
    "gateway_down.direct_marked_down": {},
    "progress_reason_503.bridge": {"A": LIFECELL_503, "B": LIFECELL_503._replace(attempt=1)},
    "progress_reason_503.direct": {"B": LIFECELL_503._replace(attempt=1)},
    "throttled.bridge": {"A": Leg(None, "capacity", "failover", "local", "pbx_limit", False, "lifecell", 1)},
    "throttled.direct": {},
}
CAPTURES = sorted(EXPECTED)


def resolver() -> Resolver:
    return Resolver(load_catalogs())


def roles(capture: str) -> dict[str, str]:
    """Leg UUID -> role (``A``, ``B``, ``B via <gateway>``)."""
    summary = json.loads((LIVE2 / f"{capture}.summary.json").read_text())
    out = {}
    for uuid, info in summary["channels"].items():
        role = info["role"]
        out[uuid] = role[0] + (f" via {role.rsplit(' via ', 1)[1]}" if " via " in role else "")
    return out


def capture_bytes(capture: str, kind: str = "json") -> bytes:
    return (LIVE2 / f"{capture}.{kind}.esl.txt").read_bytes()


def leg_of(annotation: Annotation) -> Leg:
    d = annotation.to_dict()
    return Leg(d["code"], d["category"], d["retry"], d["hangup_by"], d["outcome"], d["exact"], d["catalog"],
               d["attempt"])


def by_role(capture: str, annotations: list[Annotation]) -> dict[str, Leg]:
    names = roles(capture)
    out: dict[str, Leg] = {}
    for ann in annotations:
        role = names[ann.observation.leg_id or ""]
        assert role not in out, f"{capture}: leg {role} annotated twice"
        out[role] = leg_of(ann)
    return out


def hook_forms(capture: str, kind: str = "json") -> list[bytes]:
    """The form the shipped hook script POSTs for each leg, from the variables the recorded hook run saw (the API
    event mod_lua fired for ``api_hangup_hook``, which has no Event-Name), in the order the hooks ran."""
    forms = []
    for event in iter_events(capture_bytes(capture, kind)):
        if event.headers.get("API-Command") == "lua" and not event.headers.get("Event-Name"):
            variables = variables_from_event(event.headers)
            forms.append(urlencode({k: variables[k] for k in HOOK_VARIABLES if variables.get(k)}).encode())
    return forms
