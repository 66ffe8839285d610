"""The FreeSWITCH write-back endpoint: a loopback HTTP server the hangup hook asks for a leg's annotation.

Why a hook and not ``uuid_setvar``: every ``uuid_*`` API treats a channel that has begun hanging up as gone
(``-ERR No such channel!``), so an ESL listener cannot write into a failed leg's CDR. With
``session_in_hangup_hook=true`` the ``api_hangup_hook`` runs ``pbx_codes_hook.lua`` in the channel's own thread
before the CDR is written; the script POSTs the channel's variables here and sets the ``pbx_*`` variables it gets
back on itself. The upstream SIP answer has already gone out, so only teardown waits, and the script gives up after
about one second.

Protocol (HTTP/1.1 served by aiohttp, bound to 127.0.0.1; the script sends one request per connection):
- ``POST /annotate`` with an ``application/x-www-form-urlencoded`` body of channel variables (only the names in
  `HOOK_VARIABLES` are read);
- answer ``200`` with ``text/plain`` lines ``pbx_name=value`` for a failed leg and for an answered one (category
  ``ok``, who hung up), ``204`` for a leg with nothing to say (the script then sets nothing), ``400`` for a form the
  script would never send;
- ``GET /health`` -> ``200 ok``.
Every value is sanitized by `cdr_safe`: no CR/LF/control characters, no double quotes or backslashes (mod_cdr_csv
does not escape them), no ``${`` (no variable expansion), at most `MAX_VALUE_BYTES` of UTF-8 cut on a character.

Why aiohttp and not the hand-written server it replaced: it is already a dependency (the console), and an HTTP
parser is not code this project should own (chunked bodies, header folding, a missing Host, pipelining, limits).
Measured with ``bench/bench_hook.py`` (both servers interleaved in one run, one connection per POST as the hook
does, 2 shared CPUs): aiohttp costs about 1.3x the server CPU per request (about 350 against 270 us) and answered
0.84x the requests/s, i.e. still some 3,000 requests/s per core, where a PBX hangs up tens of legs per second.
Under ``bench/flood_agi.py --target hook`` (connections each holding a 64 KB body less one byte) the process starts
at 42 instead of 28 MiB and peaks at 63 / 179 MiB with 150 / 1,000 such connections (37 / 96 MiB before), every
real hook request still answered. The endpoint listens on loopback only, where the one client is FreeSWITCH, so
neither cost is a reason to keep our own HTTP; both are the price of not owning a parser. Bounds kept: a body
over `MAX_REQUEST_BODY` gets 413 before it is read, request lines and headers are bounded by aiohttp's parser
(8 KiB each), a body must arrive within `READ_TIMEOUT`, a connection that sends nothing is closed after it, and
each connection serves one request.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from pbx_codes.model import Annotation, Observation
from pbx_codes.observers.freeswitch import HOOK_VARIABLES, CallMemory, observation_from_variables
from pbx_codes.text import FS_CHANNEL_VARIABLE, clean

log = logging.getLogger("pbx_codes.freeswitch_hook")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8089
MAX_VALUE_BYTES = 200
MAX_REQUEST_HEAD = 16 * 1024
MAX_REQUEST_BODY = 64 * 1024
READ_TIMEOUT = 2.0

# The channel variables the hook sets, in the order they are answered.
PBX_VARIABLES: tuple[str, ...] = ("pbx_catalog", "pbx_code", "pbx_phrase", "pbx_category", "pbx_retry",
                                  "pbx_reason", "pbx_q850", "pbx_exact", "pbx_hangup_by")


def cdr_safe(value: Any, max_bytes: int = MAX_VALUE_BYTES) -> str:
    """A value that cannot add a line to an ESL command or break a CSV/JSON CDR template."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return clean(value, FS_CHANNEL_VARIABLE, max_bytes)


def hook_values(annotation: Annotation, lang: str = "en") -> dict[str, str]:
    """The ``pbx_*`` channel variables for one annotated leg, sanitized."""
    values = {
        "pbx_catalog": annotation.catalog,
        "pbx_code": annotation.code,
        "pbx_phrase": annotation.phrase,
        "pbx_category": annotation.category.value,
        "pbx_retry": annotation.retry.value,
        "pbx_reason": annotation.text(lang),
        "pbx_q850": annotation.q850 if annotation.q850 is not None else annotation.observation.q850,
        "pbx_exact": annotation.exact,
        "pbx_hangup_by": annotation.hangup_by.value,
    }
    return {name: cdr_safe(value) for name, value in values.items()}


def variables_from_form(body: bytes) -> dict[str, str]:
    """The hook's form body -> the channel variables it names (only `HOOK_VARIABLES`; ValueError if oversized)."""
    text = body.decode("utf-8", "replace")
    variables: dict[str, str] = {}
    for name, value in parse_qsl(text, keep_blank_values=False, max_num_fields=len(HOOK_VARIABLES) * 2):
        if name in HOOK_VARIABLES and name not in variables:
            variables[name] = value
    return variables


def observation_from_form(body: bytes, memory: CallMemory | None = None) -> Observation | None:
    """The hook's form body -> Observation, through the same function (and call memory) the ESL observer uses:
    a B-leg's hook runs before its A-leg's, so the A-leg learns how its last attempt ended."""
    variables = variables_from_form(body)
    if memory is None:
        return observation_from_variables(variables, report_answered=True)
    memory.learn(variables)
    obs = observation_from_variables(variables, memory=memory, report_answered=True)
    if obs is not None:
        memory.record(variables, obs)
    return obs


def render_lines(values: Mapping[str, str]) -> bytes:
    return "".join(f"{name}={value}\n" for name, value in values.items()).encode("utf-8")


class HookServer:
    """Answers the hangup hook. ``resolve`` is the pure resolver; ``publish`` (optional) also sends the annotation
    to the bus so the store and console see hook-annotated legs even without an ESL listener."""

    def __init__(self, resolve: Callable[[Observation], Annotation], *, host: str = DEFAULT_HOST,
                 port: int = DEFAULT_PORT, lang: str = "en",
                 publish: Callable[[Annotation], object] | None = None) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the hook endpoint listens on loopback only")
        self._resolve = resolve
        self._publish = publish
        self.host = host
        self.port = port
        self.lang = lang
        self.memory = CallMemory()
        self._runner: web.AppRunner | None = None

    def answer(self, body: bytes) -> tuple[int, bytes]:
        """(status, body) for one POST body; never raises."""
        try:
            obs = observation_from_form(body, self.memory)
        except ValueError:  # more fields than the hook ever sends: not our script
            log.warning("hook request refused: malformed or oversized form")
            return 400, b""
        try:
            if obs is None:
                return 204, b""
            annotation = self._resolve(obs)
            if self._publish is not None:
                self._publish(annotation)
            return 200, render_lines(hook_values(annotation, self.lang))
        except Exception:
            log.exception("hook request failed")
            return 500, b""

    async def start(self) -> int:
        app = web.Application(client_max_size=MAX_REQUEST_BODY, handler_args={"max_field_size": MAX_REQUEST_HEAD // 2})
        app.router.add_route("*", "/{path:.*}", self._handle)
        # One request per connection, as the hook sends it; an unread body is not waited for (lingering_time=0).
        self._runner = web.AppRunner(app, access_log=None, keepalive_timeout=READ_TIMEOUT, lingering_time=0,
                                     shutdown_timeout=1.0, logger=log.getChild("http"))
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        self.port = int(self._runner.addresses[0][1])  # the port the system chose when asked for 0
        log.info("FreeSWITCH hook endpoint on http://%s:%s/annotate", self.host, self.port)
        return self.port

    async def serve_forever(self) -> None:
        if self._runner is None:
            await self.start()
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            await self.close()

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        method, path = request.method, request.path
        if method == "POST" and path == "/annotate":
            length = request.content_length
            if length is not None and length > MAX_REQUEST_BODY:
                return _answer(413, b"")  # refused before a byte of it is read
            try:
                body = await asyncio.wait_for(request.read(), READ_TIMEOUT)
            except (TimeoutError, web.HTTPRequestEntityTooLarge, ConnectionError, ValueError):
                return _answer(400, b"")
            status, payload = self.answer(body)
            return _answer(status, payload)
        if method == "GET" and path == "/health":
            return _answer(200, b"ok\n")
        return _answer(404, b"")


def _answer(status: int, payload: bytes) -> web.Response:
    response = web.Response(status=status, body=payload, content_type="text/plain", charset="utf-8")
    response.force_close()  # the hook reads until the connection closes
    return response


async def run_hook_server(resolve: Callable[[Observation], Annotation], *, host: str = DEFAULT_HOST,
                          port: int = DEFAULT_PORT, lang: str = "en",
                          publish: Callable[[Annotation], object] | None = None) -> None:
    await HookServer(resolve, host=host, port=port, lang=lang, publish=publish).serve_forever()


__all__ = ["DEFAULT_PORT", "HookServer", "PBX_VARIABLES", "cdr_safe", "hook_values", "observation_from_form",
           "render_lines", "run_hook_server", "variables_from_form"]
