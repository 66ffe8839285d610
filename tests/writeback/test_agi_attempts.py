"""Failover through FastAGI: ``lookup`` annotates each attempt on the channel, ``annotate`` lists them all in the CDR;
with the AMI listener on, only an attempt that created no leg is published from this path."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.agi_test_client import agi_request, play_res_agi
from pbx_codes.adapters.agi_server import AgiServer
from pbx_codes.catalog import load_catalogs
from pbx_codes.protocols.agi import unquote_args
from pbx_codes.resolve import Resolver
from pbx_codes.writeback.agi_annotate import SEPARATOR, make_routes, own_values_expression

A_LEG, B1, B2 = "PJSIP/caller-00000001", "PJSIP/trunk-00000002", "PJSIP/backup-00000003"
OWN = own_values_expression(leg_told=True)


def leg(channel: str) -> str:
    return f"${{HANGUPCAUSE({channel},ast)}}{SEPARATOR}${{HANGUPCAUSE({channel},tech)}}"


def own(keys: str, status: str, attempts: str = "", looked_up: str = "", told_leg: str = "",
        told_cause: str = "") -> bytes:
    return SEPARATOR.join((keys, status, "", "", "", attempts, looked_up, told_leg, told_cause, "")).encode()


async def session(port: int, script: str, bleg: str, status: str, trunk: str,
                  variables: dict[str, bytes]) -> dict[str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = agi_request(script, bleg, status, "sip", trunk, channel=A_LEG, uniqueid="1.1", linkedid="1.1")
    received = await play_res_agi(reader, writer, request, variables)
    words = [unquote_args(line.decode().rstrip("\n")) for line in received]
    return {w[2]: w[3] for w in words if w[:2] == ["SET", "VARIABLE"]}


@pytest.fixture()
def published() -> list[Any]:
    return []


@contextlib.asynccontextmanager
async def _server(published: list[Any], publish_all: bool) -> AsyncIterator[AgiServer]:
    server = AgiServer(make_routes(Resolver(load_catalogs()), on_annotation=published.append,
                                   publish_all=publish_all), host="127.0.0.1", port=0, timeout=5.0)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.mark.asyncio
async def test_each_attempt_is_looked_up_on_the_channel_and_the_last_record_lists_them_in_order(
        published: list[Any]) -> None:
    async with _server(published, publish_all=True) as server:
        first = await session(server.port, "lookup", B1, "CONGESTION", "trunk", {
            OWN: own(B1, "CONGESTION"), leg(B1): f"34{SEPARATOR}SIP 503 Service Unavailable".encode()})
        assert first["pbx_retry"] == "failover" and first["pbx_attempt"] == "1"
        assert not any(name.startswith("CDR(") for name in first)  # that Dial's record is closed already
        assert (first["PBX_CODES_ATTEMPTS"], first["PBX_CODES_LOOKED_UP"]) == (
            "1:trunk:503:capacity:failover:carrier_final", B1)
        last = await session(server.port, "annotate", B2, "BUSY", "backup", {
            OWN: own(f"{B1},{B2}", "BUSY", first["PBX_CODES_ATTEMPTS"], B1),
            leg(B2): f"17{SEPARATOR}SIP 486 Busy Here".encode()})
        assert (last["CDR(pbx_code)"], last["CDR(pbx_attempt)"]) == ("486", "2")
        assert last["CDR(pbx_attempts)"] == ("1:trunk:503:capacity:failover:carrier_final;"
                                             "2:backup:486:busy:later:carrier_final")
        assert [(a.code, a.observation.attempt) for a in published] == [("503", 1), ("486", 2)]


@pytest.mark.asyncio
async def test_the_hangup_handler_does_not_count_or_publish_again_an_attempt_lookup_annotated(
        published: list[Any]) -> None:
    async with _server(published, publish_all=True) as server:
        attempts = "1:trunk:503:capacity:failover:carrier_final;2:backup:486:busy:later:carrier_final"
        last = await session(server.port, "annotate", B2, "BUSY", "backup", {
            OWN: own(f"{B1},{B2}", "BUSY", attempts, B2), leg(B2): f"17{SEPARATOR}SIP 486 Busy Here".encode()})
        assert (last["CDR(pbx_attempt)"], last["CDR(pbx_attempts)"]) == ("2", attempts)
        assert published == []


@pytest.mark.asyncio
async def test_with_ami_on_only_an_attempt_without_a_leg_is_published_from_fastagi(published: list[Any]) -> None:
    async with _server(published, publish_all=False) as server:
        await session(server.port, "annotate", B1, "BUSY", "trunk", {
            OWN: own(B1, "BUSY"), leg(B1): f"17{SEPARATOR}SIP 486 Busy Here".encode()})
        assert published == []  # the AMI listener saw this leg
        written = await session(server.port, "annotate", "", "CHANUNAVAIL", "trunk", {OWN: own("", "CHANUNAVAIL")})
        assert (written["CDR(pbx_outcome)"], written["CDR(pbx_category)"], written["CDR(pbx_retry)"]) == (
            "unreachable", "network", "failover")
        assert [(a.observation.channel, a.observation.outcome.value) for a in published] == [(None, "unreachable")]


async def _asterisk_with_mset(port: int, request: bytes, variables: dict[str, bytes]) -> list[list[str]]:
    """Like res_agi: EXEC runs the application (``200 result=0``), SET and GET as `play_res_agi` answers them."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    received: list[list[str]] = []
    try:
        while line := await reader.readline():
            words = unquote_args(line.decode().rstrip("\n"))
            received.append(words)
            if words[:3] == ["GET", "FULL", "VARIABLE"]:
                value = variables.get(words[3])
                writer.write(b"200 result=0\n" if value is None else b"200 result=1 (" + value + b")\n")
            elif words[0] == "EXEC":
                writer.write(b"200 result=0\n")
            else:
                writer.write(b"200 result=1\n")
            await writer.drain()
    finally:
        writer.close()
    return received


@pytest.mark.asyncio
async def test_plain_values_go_in_one_mset_and_the_carriers_text_never_does(published: list[Any]) -> None:
    async with _server(published, publish_all=True) as server:
        phrase = "Limit, reached $(x) ${SHELL(id)} CDR(pbx_code)=1"
        request = agi_request("annotate", B1, "CONGESTION", "lifecell", "trunk", channel=A_LEG, uniqueid="1.1")
        commands = await _asterisk_with_mset(server.port, request, {
            OWN: own(B1, "CONGESTION"), leg(B1): f"34{SEPARATOR}SIP 503 {phrase}".encode()})
        (mset,) = [c for c in commands if c[0] == "EXEC"]
        assert mset[1] == "MSet" and len(mset) == 3
        assigned = dict(item.split("=", 1) for item in mset[2].split(","))
        assert (assigned["CDR(pbx_code)"], assigned["CDR(pbx_outcome)"], assigned["CDR(pbx_attempt)"]) == (
            "503", "carrier_final", "1")
        assert "CDR(pbx_phrase)" not in assigned and "CDR(pbx_reason)" not in assigned
        sets = {c[2]: c[3] for c in commands if c[:2] == ["SET", "VARIABLE"]}
        assert sets["CDR(pbx_phrase)"] == phrase and set(sets) & set(assigned) == set()
        assert server.stats.failed_replies == 0


LEG_TECH = "${SHARED(PBX_CODES_LEG_TECH)}"


@pytest.mark.asyncio
@pytest.mark.parametrize("dial_copy", [None, "SIP 100 Trying", "SIP 180 Ringing"])
async def test_the_legs_own_status_line_wins_when_dials_copy_on_the_channel_is_missing_or_provisional(
        published: list[Any], dial_copy: str | None) -> None:
    # On a busy PBX Dial may end the attempt with nothing, or only a provisional, filed on the calling channel;
    # the leg's own hangup handler left the final one (SHARED PBX_CODES_LEG_*).
    async with _server(published, publish_all=True) as server:
        variables = {OWN: own(B1 if dial_copy else "", "CONGESTION", told_leg=B1, told_cause="21"),
                     LEG_TECH: b"SIP 401 Unauthorized, try again"}
        if dial_copy:
            variables[leg(B1)] = f"Normal Clearing{SEPARATOR}{dial_copy}".encode()
        written = await session(server.port, "annotate", B1, "CONGESTION", "lifecell", variables)
        assert (written["CDR(pbx_code)"], written["CDR(pbx_phrase)"], written["CDR(pbx_exact)"],
                written["CDR(pbx_outcome)"], written["CDR(pbx_q850_observed)"]) == (
            "401", "Unauthorized, try again", "1", "carrier_final", "21")


@pytest.mark.asyncio
async def test_a_status_line_left_by_another_leg_is_not_taken_for_this_one(published: list[Any]) -> None:
    async with _server(published, publish_all=True) as server:
        written = await session(server.port, "annotate", B2, "BUSY", "backup", {
            OWN: own(f"{B1},{B2}", "BUSY", told_leg=B1, told_cause="21"), LEG_TECH: b"SIP 401 Unauthorized",
            leg(B2): f"17{SEPARATOR}SIP 486 Busy Here".encode()})
        assert (written["CDR(pbx_code)"], written["CDR(pbx_phrase)"]) == ("486", "Busy Here")
