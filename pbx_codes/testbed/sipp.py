"""sipp as both ends of a bench call: the caller (UAC) dialling into Asterisk, the carrier (UAS) failing it.

sipp checks a scenario's status codes when it loads the file, so the carrier scenario is rendered once per
(code, phrase). The phrase goes into the status line byte for byte (quotes, non-ASCII), which is the point: the
bench proves such a phrase reaches the dialplan intact. Every sipp run has a global timeout, and the Python side
waits with its own, so a lost message never hangs a test.
"""
from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pbx_codes.testbed.rootfs import BenchError, free_port

if TYPE_CHECKING:
    from pbx_codes.testbed.asterisk import AsteriskBench

SIPP = "sipp"
SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"
CALL_TIMEOUT_S = 30
CANCEL = "cancel"
ANSWERED = "200"

#: Phrases used when a caller asks for a code without one (RFC 3261 and RFC 3398 wording).
DEFAULT_PHRASES = {
    "200": "OK",
    "403": "Forbidden",
    "404": "Not Found",
    "408": "Request Timeout",
    "480": "Temporarily Unavailable",
    "484": "Address Incomplete",
    "486": "Busy Here",
    "487": "Request Terminated",
    "488": "Not Acceptable Here",
    "500": "Server Internal Error",
    "502": "Bad Gateway",
    "503": "Service Unavailable",
    "600": "Busy Everywhere",
    "603": "Decline",
}

_CATALOG_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_CODE_RE = re.compile(r"^[2-6][0-9][0-9]$")


@dataclass(frozen=True, slots=True)
class CallPlan:
    """What one bench call does: the carrier's answer and what the caller dials."""

    kind: str  # "fail" | "answer" | "cancel"
    code: str
    phrase: str
    exten: str
    catalog: str | None


def plan_call(code: str | int, phrase: str = "", catalog: str | None = None) -> CallPlan:
    """Validate the request and decide the scenarios: refuse what sipp or SIP could not carry."""
    code_text = str(code).strip().lower()
    if catalog is not None and not _CATALOG_RE.fullmatch(catalog):
        raise ValueError(f"catalog name {catalog!r}: letters, digits, '_', '.', '-' only")
    if code_text == CANCEL:
        return CallPlan("cancel", "487", "Request Terminated", "100", catalog)
    if not _CODE_RE.fullmatch(code_text) or (code_text[0] == "2" and code_text != ANSWERED):
        raise ValueError(f"code {code!r}: a final SIP status 300-699, 200 (answer) or 'cancel'")
    phrase = phrase or DEFAULT_PHRASES.get(code_text, "Bench Failure")
    check_phrase(phrase)
    if code_text == ANSWERED:
        return CallPlan("answer", code_text, phrase, "200", catalog)
    return CallPlan("fail", code_text, phrase, code_text, catalog)


#: The longest phrase the bench sends: far over any CDR column, well under sipp's and PJSIP's message sizes.
MAX_PHRASE_BYTES = 4096


def check_phrase(phrase: str) -> None:
    """A reason phrase must fit one status line: no control characters; no brackets (sipp keywords).

    Bytes that are not UTF-8 are allowed as ``surrogateescape`` characters (``"\\udcff"`` is the byte 0xFF): a
    carrier can send them, and the bench proves what happens to them.
    """
    if len(phrase.encode("utf-8", errors="surrogateescape")) > MAX_PHRASE_BYTES:
        raise ValueError(f"phrase longer than {MAX_PHRASE_BYTES} bytes")
    for ch in phrase:
        if unicodedata.category(ch) == "Cc" or ch in "\u2028\u2029":
            raise ValueError(f"phrase contains a control character {ch!r}")
        if ch in "[]":
            raise ValueError("phrase contains '[' or ']', which sipp reads as a keyword")
        if "\ud800" <= ch <= "\udfff" and not "\udc80" <= ch <= "\udcff":
            raise ValueError("phrase contains a surrogate that stands for no byte")


def _template(name: str) -> str:
    return (SCENARIOS_DIR / name).read_text(encoding="utf-8")


def render_uas(plan: CallPlan, scenario: str | None = None, hold_ms: int = 500) -> str:
    """The carrier scenario for one plan (phrase inside CDATA, so XML escaping does not apply)."""
    name = scenario or {"fail": "uas_fail.xml", "answer": "uas_answer.xml", "cancel": "uas_ring.xml"}[plan.kind]
    return (_template(name).replace("@@CODE@@", plan.code).replace("@@PHRASE@@", plan.phrase)
            .replace("@@HOLD_MS@@", str(hold_ms)))


def render_uac(plan: CallPlan, src: str, hold_ms: int = 500, headers: dict[str, str] | None = None) -> str:
    """The caller scenario: ``src`` becomes the From user, hence the CDR's src, which identifies the call."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", src):
        raise ValueError(f"caller id {src!r}")
    headers = headers or {}
    if any(not re.fullmatch(r"[A-Za-z0-9-]{1,40}: [A-Za-z0-9&_.-]{1,200}", f"{k}: {v}") for k, v in headers.items()):
        raise ValueError(f"bench headers {headers!r}")
    extra = f"X-PBX-Codes-Catalog: {plan.catalog}\n" if plan.catalog else ""
    extra += "".join(f"{name}: {value}\n" for name, value in headers.items())
    if plan.kind == "cancel":
        text = _template("uac_cancel.xml")
    elif plan.kind == "wait_bye":
        text = _template("uac_wait_bye.xml")
    else:
        # Any final failure Asterisk sends upstream ends the call through the "failed" branch (sipp has no
        # wildcard for response codes, and Asterisk maps carrier codes: 409 arrives as 603, 503 as 503...).
        recvs = "\n".join(
            f'  <recv response="{c}" optional="true" next="failed"/>' for c in range(300, 700)
        )
        text = _template("uac_call.xml").replace("@@FAILURE_RECVS@@", recvs)
    return (
        text.replace("@@SRC@@", src)
        .replace("@@EXTRA_HEADERS@@", extra)
        .replace("@@HOLD_MS@@", str(hold_ms))
    )


def _sipp_binary() -> str:
    path = shutil.which(SIPP)
    if path is None:
        raise BenchError("sipp is not installed (Debian package: sip-tester)")
    return path


def _wait_bound(port: int, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Wait until sipp holds the UDP port: binding it ourselves fails once sipp has it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise BenchError(f"sipp carrier exited early with {process.returncode}: {err[-2000:]}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return
        time.sleep(0.02)
    raise BenchError(f"sipp carrier did not bind 127.0.0.1:{port}")


def _start_carrier(scenario: Path, port: int, busy: set[int], work: Path, tries: int = 3) -> subprocess.Popen[bytes]:
    """A sipp carrier bound to `port`. One that exits at once is started again with other media ports: the media
    port was free when chosen, but its neighbours (sipp binds a few) may not be, on a busy machine."""
    for attempt in range(tries):
        carrier = subprocess.Popen(_sipp_args(scenario, port, busy), cwd=work, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _wait_bound(port, carrier)
            return carrier
        except BenchError:
            if carrier.poll() is None:  # running but not bound: end it; the error stands
                _end(carrier, 0.1)
                raise
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


def _port_avoiding(busy: set[int]) -> int:
    """A free UDP port that is none of the bench's own (the carrier port is free between calls)."""
    while (port := free_port()) in busy or port + 2 in busy:
        continue
    busy.add(port)
    return port


def _sipp_args(scenario: Path, local_port: int, busy: set[int]) -> list[str]:
    return [
        _sipp_binary(),
        "-sf", str(scenario),
        "-i", "127.0.0.1",
        "-p", str(local_port),
        "-mp", str(_port_avoiding(busy)),
        "-m", "1",
        "-nostdin",
        "-timeout", f"{CALL_TIMEOUT_S}s",
        "-timeout_error",
        "-trace_err",
        "-trace_msg",
    ]


def _end(process: subprocess.Popen[bytes], timeout: float) -> int:
    """Wait for a sipp we started; end it (by its PID) if it overstays."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            return process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait(timeout=3)


def run_call(bench: AsteriskBench, code: str | int, phrase: str = "", catalog: str | None = None,
             hold_ms: int = 500) -> str:
    """Place one call through ``bench``: start the carrier, run the caller, wait for both. Returns the caller id
    (the CDR's src) that identifies the call's records."""
    plan = plan_call(code, phrase, catalog)
    src = new_src()
    return run_sipp(bench, src, [(bench.carrier_port, render_uas(plan))], render_uac(plan, src, hold_ms),
                    plan.exten, what=str(plan))


def new_src() -> str:
    """A fresh caller id: the CDR's src, by which the bench finds a call's records."""
    return "bench" + secrets.token_hex(6)


def run_sipp(bench: AsteriskBench, src: str, carriers: list[tuple[int, str]], caller_xml: str, exten: str, *,
             what: str = "", carriers_must_finish: bool = True, silent_port: int | None = None) -> str:
    """Run sipp carriers (port, scenario text) and one sipp caller through ``bench``; wait for them all.

    With ``carriers_must_finish=False`` a carrier the call never reached (a failover chain that stopped early) is
    ended when the caller is done. ``silent_port``: hold that UDP port open and never answer on it.
    """
    if not bench.running:
        raise BenchError("the Asterisk bench is not running")
    with tempfile.TemporaryDirectory(prefix="pbx-codes-sipp-") as tmp, _silent(silent_port):
        work = Path(tmp)
        busy = {bench.carrier_port, bench.sip_port, *(port for port, _ in carriers)}
        started: list[subprocess.Popen[bytes]] = []
        try:
            for index, (port, xml) in enumerate(carriers):
                scenario = work / f"carrier{index}.xml"
                scenario.write_text(xml, encoding="utf-8", errors="surrogateescape")
                started.append(_start_carrier(scenario, port, busy, work))
            uac_file = work / "caller.xml"
            uac_file.write_text(caller_xml, encoding="utf-8")
            caller = subprocess.Popen(
                [*_sipp_args(uac_file, _port_avoiding(busy), busy), "-s", exten, f"127.0.0.1:{bench.sip_port}"],
                cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
            caller_rc = _end(caller, CALL_TIMEOUT_S + 5)
            carrier_rcs = [_end(c, 10 if carriers_must_finish else 0.5) for c in started]
        finally:
            for carrier in started:
                if carrier.poll() is None:
                    _end(carrier, 0.1)
        failed = carrier_rcs if carriers_must_finish else []
        if caller_rc != 0 or any(failed):
            logs = "\n".join(
                f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(work.glob("*.log"))
            )
            raise BenchError(f"sipp failed (caller {caller_rc}, carriers {carrier_rcs}) for {what}:\n{logs}")
    return src


@contextlib.contextmanager
def _silent(port: int | None) -> Iterator[None]:
    """A UDP port that takes every datagram and answers none: a carrier that never says anything."""
    if port is None:
        yield
        return
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", port))
        yield
