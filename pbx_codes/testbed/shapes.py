"""The call shapes an operator sees every day, placed for real through the bench, and failover chains.

Each shape is a trunk endpoint of the bench (see `AsteriskBench.extra_trunks`), what the carrier there does, what
the caller does and how long the dialplan lets it ring. `place_shape` and `place_failover` return the caller id
(the CDR's ``src``) of the call, like `sipp.run_call`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pbx_codes.testbed.asterisk import DEAD, QUALIFY_DOWN, ROUTES, SILENT, BenchError
from pbx_codes.testbed.sipp import CallPlan, check_phrase, new_src, plan_call, render_uac, render_uas, run_sipp

if TYPE_CHECKING:
    from pbx_codes.testbed.asterisk import AsteriskBench

EXTEN = "100"


@dataclass(frozen=True, slots=True)
class Shape:
    """One call shape: the trunk dialled, the carrier's scenario (None: nobody there), the caller's plan kind."""

    name: str
    trunk: str
    carrier: str | None
    caller: str  # "fail" (any final response ends it; an answer is hung up by the caller) | "cancel" | "wait_bye"
    dial_timeout: int
    what: str


SHAPES: dict[str, Shape] = {s.name: s for s in (
    Shape("unreachable", DEAD, None, "fail", 20,
          "nothing listens on the trunk's port: PJSIP retransmits the INVITE until timer B and ends the leg with a "
          "408 of its own"),
    Shape("silent", SILENT, None, "fail", 1,
          "the trunk takes the INVITE and never answers, not even 100 Trying: the dial timeout ends it"),
    Shape("qualify-down", QUALIFY_DOWN, None, "fail", 20,
          "qualify marked the trunk's contact Unavailable: Dial creates no channel, no INVITE is sent"),
    Shape("ring-timeout", "trunk", "uas_ring.xml", "fail", 2,
          "the carrier rings (180) and the dial timeout ends the attempt"),
    Shape("caller-cancel", "trunk", "uas_ring.xml", "cancel", 20,
          "the carrier rings and the caller hangs up before an answer"),
    Shape("answered-carrier-bye", "trunk", "uas_answer_bye.xml", "wait_bye", 20,
          "the carrier answers and hangs up (BYE from the trunk)"),
    Shape("answered-caller-bye", "trunk", "uas_answer.xml", "fail", 20,
          "the carrier answers and the caller hangs up"),
)}

_LINK = re.compile(r"^\s*([1-6][0-9][0-9])(?:\s+(.*?))?\s*$")


def parse_link(text: str) -> tuple[str, str]:
    """``"503 Service Unavailable"`` -> (``503``, ``Service Unavailable``): one carrier of a failover chain."""
    match = _LINK.match(text)
    if match is None or match.group(1).startswith("1") or (match.group(1)[0] == "2" and match.group(1) != "200"):
        raise ValueError(f"failover link {text!r}: 'CODE PHRASE' with a final SIP status 300-699, or 200 (answer)")
    return match.group(1), match.group(2) or ""


def _wait_unavailable(bench: AsteriskBench, timeout: float = 10.0) -> None:
    """Qualify runs at start and takes up to its timeout to mark the contact down: wait for that, not longer."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "Unavail" in bench.cli(f"pjsip show aor {QUALIFY_DOWN}"):
            return
        time.sleep(0.2)
    raise BenchError(f"the {QUALIFY_DOWN} trunk's contact did not become Unavailable within {timeout} s")


def place_shape(bench: AsteriskBench, name: str, catalog: str | None = None, hold_ms: int = 500) -> str:
    """Place one call of the shape ``name`` (see `SHAPES`); returns its caller id."""
    shape = SHAPES.get(name)
    if shape is None:
        raise ValueError(f"unknown scenario {name!r}; one of: {', '.join(SHAPES)}")
    if shape.trunk == QUALIFY_DOWN:
        _wait_unavailable(bench)
    plan = CallPlan(shape.caller, "200", "OK", EXTEN, catalog)
    src = new_src()
    carriers = [(bench.route_port(shape.trunk), render_uas(plan, shape.carrier, hold_ms))] if shape.carrier else []
    headers = {"X-PBX-Codes-Trunk": shape.trunk, "X-PBX-Codes-Dial-Timeout": str(shape.dial_timeout)}
    return run_sipp(bench, src, carriers, render_uac(plan, src, hold_ms, headers), EXTEN, what=name,
                    silent_port=bench.silent_port if shape.trunk == SILENT else None)


def place_failover(bench: AsteriskBench, chain: list[tuple[str, str]], catalog: str | None = None,
                   hold_ms: int = 500) -> str:
    """A call through the shipped failover example over a chain of carriers answering in turn (``200`` answers);
    returns its caller id. The dialplan moves on only while pbx-codes says ``failover``."""
    if not 1 <= len(chain) <= len(ROUTES):
        raise ValueError(f"a failover chain has 1 to {len(ROUTES)} carriers")
    plans: list[CallPlan] = []
    for code, phrase in chain:
        check_phrase(phrase)
        plans.append(plan_call(code, phrase, catalog))
    routes = ROUTES[:len(chain)]
    carriers = [(bench.route_port(route), render_uas(plan)) for route, plan in zip(routes, plans)]
    src = new_src()
    caller = CallPlan("fail", "200", "OK", EXTEN, catalog)
    # Two carriers: the shipped example exactly as written (its own routes, trunk then backup).
    headers = {"X-PBX-Codes-Routes": "default" if len(chain) == 2 else "&".join(routes)}
    return run_sipp(bench, src, carriers, render_uac(caller, src, hold_ms, headers), EXTEN, what=f"failover {chain}",
                    carriers_must_finish=False)


__all__ = ["SHAPES", "Shape", "parse_link", "place_failover", "place_shape"]
