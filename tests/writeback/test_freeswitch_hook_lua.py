"""The shipped hangup hook (freeswitch/scripts/pbx_codes_hook.lua) run by real Lua 5.1, 5.2, 5.3 and 5.4
interpreters against the real hook endpoint and resolver, on the channel variables of recorded FreeSWITCH calls.

FreeSWITCH has no Debian package, so `tests/writeback/lua/harness.lua` stands in for the parts of mod_lua the script
uses (session:getVariable/setVariable, freeswitch.consoleLog, freeswitch.API():execute("curl"), argv), with
mod_lua's signatures; everything else about the run is real: the script, the interpreter, luasocket, TCP on
loopback, the HTTP endpoint, the catalogs.
"""
from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from pbx_codes.catalog import load_catalogs
from pbx_codes.model import Annotation
from pbx_codes.observers.freeswitch import CallMemory, observation_from_variables
from pbx_codes.resolve import Resolver
from pbx_codes.writeback.freeswitch_hook import MAX_VALUE_BYTES, PBX_VARIABLES, HookServer, cdr_safe, hook_values
from writeback.fs_hook_support import (
    HOSTILE_PHRASE,
    HookRun,
    carrier_legs,
    hangup_channels,
    lua_interpreters,
    run_hook,
    with_phrase,
)

LUAS = lua_interpreters()
pytestmark = [
    pytest.mark.skipif(not LUAS, reason="no Lua interpreter with luasocket: apt-get install lua5.3 lua-socket"),
]
LUA = LUAS[0] if LUAS else ""
FAILED = ["409_not_enough_money", "503_simul_limit", "480_reason_q850_17"]
BINDINGS = {"gw409": "lifecell", "gw503": "lifecell", "gw817": "lifecell", "gw200": "lifecell"}


@pytest.fixture(scope="module")
def real_resolver() -> Resolver:
    return Resolver(load_catalogs(), bindings=BINDINGS)


class Endpoint:
    """The real hook endpoint on a free loopback port, remembering every annotation it gave."""

    def __init__(self, resolver: Resolver) -> None:
        self.published: list[Annotation] = []
        self.server = HookServer(resolver.resolve, port=0, publish=self.published.append)

    async def __aenter__(self) -> int:
        return await self.server.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.server.close()


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_annotated(run: HookRun) -> dict[str, str]:
    assert run.done and not run.errors, run.errors
    assert [name for name, _ in run.sets] == list(PBX_VARIABLES)
    assert not [log for log in run.logs if log[0].upper() == "WARNING"]
    return run.variables


def expected(resolver: Resolver, variables: dict[str, str], memory: CallMemory | None = None) -> dict[str, str]:
    """What the endpoint should answer for this leg (after the call's earlier legs, when `memory` holds them)."""
    if memory is not None:
        memory.learn(variables)
    obs = observation_from_variables(variables, memory=memory, report_answered=True)
    assert obs is not None
    if memory is not None:
        memory.record(variables, obs)
    return hook_values(resolver.resolve(obs))


@pytest.mark.asyncio
@pytest.mark.parametrize("lua", LUAS)
@pytest.mark.parametrize("scenario", FAILED)
async def test_every_failed_leg_gets_pbx_variables_and_a_carries_b_cause(lua: str, scenario: str,
                                                                         real_resolver: Resolver, tmp_path: Path):
    a_leg, b_leg = carrier_legs(scenario)
    endpoint = Endpoint(real_resolver)
    async with endpoint as port:
        b_run = await run_hook(lua, b_leg, port, tmp_path)
        a_run = await run_hook(lua, a_leg, port, tmp_path)
    b_values, a_values = assert_annotated(b_run), assert_annotated(a_run)
    memory = CallMemory()  # the endpoint's: A learns how its B-leg ended
    assert b_values == expected(real_resolver, b_leg, memory)
    assert a_values == expected(real_resolver, a_leg, memory)
    code = b_leg["sip_invite_failure_status"]
    # A's own variables hold only copies (last_bridge_*, sip_invite_failure_*): the hook still explains B's cause.
    assert "sip_term_status" not in a_leg and a_leg["last_bridge_proto_specific_hangup_cause"] == f"sip:{code}"
    for name in ("pbx_catalog", "pbx_code", "pbx_phrase", "pbx_category", "pbx_retry", "pbx_q850", "pbx_exact"):
        assert a_values[name] == b_values[name], name
    assert b_values["pbx_catalog"] == "lifecell" and b_values["pbx_code"] == code
    assert b_values["pbx_phrase"] == b_leg["sip_invite_failure_phrase"]
    assert b_values["pbx_hangup_by"] == "carrier"
    assert [a.observation.leg_id for a in endpoint.published] == [b_leg["uuid"], a_leg["uuid"]]


@pytest.mark.asyncio
async def test_carrier_words_decide_the_category(real_resolver: Resolver, tmp_path: Path):
    """409 from this carrier is money, not a conflict; its 503 is a channel limit; the cause of a Q.850 Reason
    header reaches pbx-codes through the hook."""
    results = {}
    endpoint = Endpoint(real_resolver)
    async with endpoint as port:
        for scenario in FAILED:
            results[scenario] = assert_annotated(await run_hook(LUA, carrier_legs(scenario)[1], port, tmp_path))
    assert (results["409_not_enough_money"]["pbx_category"], results["409_not_enough_money"]["pbx_retry"]) == \
        ("billing", "no")
    assert (results["503_simul_limit"]["pbx_category"], results["503_simul_limit"]["pbx_retry"]) == \
        ("capacity", "failover")
    assert [a.observation.q850 for a in endpoint.published] == [31, 41, 17]
    assert all(r["pbx_exact"] == "true" for r in results.values())


@pytest.mark.asyncio
@pytest.mark.parametrize("role", ["A", "B"])
async def test_answered_call_ended_by_the_carriers_bye_is_ok_and_says_who_hung_up(role: str, real_resolver: Resolver,
                                                                                  tmp_path: Path):
    legs = hangup_channels("200_ok_bye")
    endpoint = Endpoint(real_resolver)
    async with endpoint as port:
        run = await run_hook(LUA, legs[role], port, tmp_path)
    assert run.done and not run.errors and run.logs == []
    values = run.variables
    assert (values["pbx_code"], values["pbx_category"], values["pbx_hangup_by"]) == ("200", "ok", "carrier")
    assert [a.observation.leg_id for a in endpoint.published] == [legs[role]["uuid"]]


@pytest.mark.asyncio
@pytest.mark.parametrize("lua", LUAS)
async def test_server_down_sets_nothing_and_warns(lua: str, tmp_path: Path):
    run = await run_hook(lua, carrier_legs("409_not_enough_money")[1], free_port(), tmp_path)
    assert run.done and not run.errors and run.sets == []
    (warning,) = run.logs
    assert warning[0] == "WARNING" and "connect" in warning[1] and "without pbx_* fields" in warning[1]


async def _stalling_server(trickle: bool) -> tuple[asyncio.base_events.Server, list[asyncio.Task]]:
    """Accepts and never finishes an answer: silent, or one byte every 0.2 s (each read then succeeds, so only a
    deadline for the whole exchange ends it)."""
    tasks: list[asyncio.Task] = []

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for _ in range(300):
                if trickle:
                    writer.write(b"H")
                    await writer.drain()
                await asyncio.sleep(0.2)
        except ConnectionError:
            pass
        finally:
            writer.close()

    def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.append(asyncio.ensure_future(stall(reader, writer)))

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    return server, tasks


async def _run_against_canned_answer(response: bytes, tmp_path: Path) -> HookRun:
    """The hook on the 409 carrier leg against a server that reads the request head and answers `response` as is."""
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(response)
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        return await run_hook(LUA, carrier_legs("409_not_enough_money")[1], server.sockets[0].getsockname()[1],
                              tmp_path)


@pytest.mark.asyncio
@pytest.mark.parametrize("trickle", [False, True], ids=["silent", "trickle"])
async def test_stuck_server_is_given_up_on_its_deadline(trickle: bool, tmp_path: Path):
    server, tasks = await _stalling_server(trickle)
    try:
        run = await run_hook(LUA, carrier_legs("503_simul_limit")[1], server.sockets[0].getsockname()[1], tmp_path,
                             guard=15.0)
    finally:
        for task in tasks:
            task.cancel()
        server.close()
        await server.wait_closed()
    assert run.done and not run.errors and run.sets == []
    (warning,) = run.logs
    assert warning[0] == "WARNING" and "timeout" in warning[1]


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [500, 404])
async def test_error_answer_sets_nothing_and_warns(status: int, tmp_path: Path):
    run = await _run_against_canned_answer(
        f"HTTP/1.1 {status} Oops\r\nContent-Length: 15\r\n\r\npbx_code=bogus\n".encode(), tmp_path)
    assert run.done and run.sets == [] and run.logs[0][0] == "WARNING" and str(status) in run.logs[0][1]


@pytest.mark.asyncio
async def test_script_sets_only_known_clean_pbx_lines(tmp_path: Path):
    """Whatever answers on the port, the script itself only sets the nine names, and only one-line plain values."""
    body = ('pbx_code=409\r\npbx_phrase=a"b\npbx_reason=x\\y\npbx_category=${system(id)}\npbx_evil=1\n'
            'hangup_cause=NORMAL_CLEARING\npbx_retry=no\n=x\npbx_catalog\npbx_q850=' + "9" * 2000 + "\n").encode()
    run = await _run_against_canned_answer(
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body, tmp_path)
    assert run.done and not run.errors
    assert run.sets == [("pbx_code", "409"), ("pbx_retry", "no")]


@pytest.mark.asyncio
@pytest.mark.parametrize("lua", LUAS)
@pytest.mark.parametrize("mode", ["socket", "curl"])
async def test_hostile_phrase_arrives_intact_and_leaves_as_one_safe_line(lua: str, mode: str,
                                                                         real_resolver: Resolver, tmp_path: Path):
    a_leg, b_leg = carrier_legs("409_not_enough_money")
    endpoint = Endpoint(real_resolver)
    async with endpoint as port:
        runs = [await run_hook(lua, with_phrase(leg, HOSTILE_PHRASE), port, tmp_path, mode=mode)
                for leg in (b_leg, a_leg)]
    # The endpoint read the carrier's words exactly, up to the script's 512-byte cut (mod_curl's URL-decoding
    # included), so "&pbx_codes_catalog=..." inside the phrase did not become a field.
    sent = HOSTILE_PHRASE.encode("utf-8")[:512].decode("utf-8", errors="replace")
    assert [a.observation.phrase for a in endpoint.published] == [sent, sent]
    for run in runs:
        values = assert_annotated(run)
        assert values["pbx_catalog"] == "lifecell" and values["pbx_code"] == "409"
        assert values["pbx_phrase"] == cdr_safe(HOSTILE_PHRASE)
        for value in values.values():
            assert len(value.encode("utf-8")) <= MAX_VALUE_BYTES
            assert not set(value) & set('"\\\r\n\x00') and "${" not in value
        if mode == "curl":
            assert [command for command, _ in run.api] == ["curl"] and " " not in run.api[0][1].split(" post ")[1]


@pytest.mark.asyncio
async def test_without_session_in_hangup_hook_it_only_warns(tmp_path: Path):
    run = await run_hook(LUA, {}, free_port(), tmp_path, mode="nosession")
    assert run.done and not run.errors and run.sets == []
    assert run.logs[0][0] == "WARNING" and "session_in_hangup_hook" in run.logs[0][1]


@pytest.mark.asyncio
@pytest.mark.parametrize("lua", LUAS)
async def test_a_phrase_of_100_kb_is_cut_and_the_leg_is_still_annotated(lua: str, real_resolver: Resolver,
                                                                         tmp_path: Path):
    _, b_leg = carrier_legs("409_not_enough_money")
    endpoint = Endpoint(real_resolver)
    async with endpoint as port:
        run = await run_hook(lua, with_phrase(b_leg, "Not enough money " + "x" * 100_000), port, tmp_path)
    values = assert_annotated(run)
    assert values["pbx_code"] == "409" and values["pbx_category"] == "billing"
    assert len(endpoint.published[0].observation.phrase.encode("utf-8")) <= 512


def hook_time_variables(capture: str) -> list[dict[str, str]]:
    """What each leg's hook saw on the live FreeSWITCH (the API event mod_lua fired for it), in hook order."""
    from observers.freeswitch_live2 import capture_bytes
    from pbx_codes.observers.freeswitch import iter_events, variables_from_event

    return [variables_from_event(e.headers) for e in iter_events(capture_bytes(capture))
            if e.headers.get("API-Command") == "lua" and not e.headers.get("Event-Name")]


@pytest.mark.asyncio
@pytest.mark.parametrize("lua", LUAS)
@pytest.mark.parametrize("capture", ["gateway_down.bridge_marked_down", "throttled.bridge", "gateway_down.bridge",
                                     "failover_503_then_486.bridge", "answered_carrier_bye.bridge",
                                     "caller_cancel.bridge"])
async def test_the_script_writes_every_live_legs_annotation_into_its_cdr(lua: str, capture: str,
                                                                         tmp_path: Path) -> None:
    """The shipped script under each Lua, fed what the live hook saw, sets on every leg (a bridge that never
    reached a carrier and an answered call included) the values the listener's annotation gives."""
    from observers.freeswitch_live2 import capture_bytes
    from observers.freeswitch_live2 import resolver as live_resolver
    from pbx_codes.observers.freeswitch import replay

    resolver = live_resolver()
    expected = {a.observation.leg_id: hook_values(a) for a in replay(capture_bytes(capture), resolver)}
    endpoint = Endpoint(resolver)
    got = {}
    async with endpoint as port:
        for variables in hook_time_variables(capture):
            got[variables["uuid"]] = assert_annotated(await run_hook(lua, variables, port, tmp_path))
    assert got == expected


@pytest.mark.asyncio
@pytest.mark.parametrize("lua", LUAS)
async def test_the_mod_curl_fallback_writes_the_same_annotations(lua: str, tmp_path: Path) -> None:
    from observers.freeswitch_live2 import capture_bytes
    from observers.freeswitch_live2 import resolver as live_resolver
    from pbx_codes.observers.freeswitch import replay

    resolver = live_resolver()
    capture = "failover_503_then_486.bridge"
    expected = {a.observation.leg_id: hook_values(a) for a in replay(capture_bytes(capture), resolver)}
    endpoint = Endpoint(resolver)
    got = {}
    async with endpoint as port:
        for variables in hook_time_variables(capture):
            run = await run_hook(lua, variables, port, tmp_path, mode="curl")
            assert [command for command, _ in run.api] == ["curl"]
            got[variables["uuid"]] = assert_annotated(run)
    assert got == expected
