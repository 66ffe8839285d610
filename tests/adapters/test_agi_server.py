"""The FastAGI server and its annotate/lookup handlers against a scripted Asterisk side on 127.0.0.1."""
from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import pytest
import pytest_asyncio

from adapters.agi_test_client import agi_request, play_res_agi
from pbx_codes.adapters.agi_server import AgiServer
from pbx_codes.model import Observation
from pbx_codes.protocols.agi import unquote_args
from pbx_codes.writeback.agi_annotate import CDR_FIELDS, SEPARATOR, make_routes, own_values_expression
from support.waiting import wait_until

B_LEG = "PJSIP/trunk-00000009"
#: The channel's own values, in one GET; the dialed leg's causes come in a second one, only for a listed leg.
COMBINED = own_values_expression(leg_told=False)
WITH_BLEG = own_values_expression(leg_told=True)  # the dialplan named the leg: no need for the CDR's


def leg(channel: str) -> str:
    return f"${{HANGUPCAUSE({channel},ast)}}{SEPARATOR}${{HANGUPCAUSE({channel},tech)}}"


def own(keys: str, status: str, source: str, catalog: str, cause: str, dst: str = "") -> bytes:
    return SEPARATOR.join((keys, status, source, catalog, cause, "", "", "", "", dst)).encode()
HOSTILE = ('Not "enough" money\\; $(rm -rf) ${SHELL(id)} ' + "грошей немає " * 150)
CRLF_TEXT = "line one\r\nSET VARIABLE CDR(owned) 1\nEXEC System reboot\x00"


@dataclass
class FakeAnnotation:
    """Stands for the resolver's Annotation: the fields the write-back reads."""

    observation: Observation
    catalog: str = "lifecell"
    category: str = "billing"
    retry: str = "failover"
    exact: bool = True
    texts: dict = field(default_factory=dict)

    @property
    def code(self):
        return self.observation.sip_code

    @property
    def phrase(self):
        return self.observation.phrase

    @property
    def q850(self):
        return self.observation.q850

    @property
    def hangup_by(self):
        return self.observation.hangup_by

    def text(self, lang: str) -> str:
        return self.texts.get(lang, "")


class FakeResolver:
    def __init__(self, reason: str = "Недостатньо коштів") -> None:
        self.reason = reason
        self.seen: list[Observation] = []

    def resolve(self, obs: Observation) -> FakeAnnotation:
        self.seen.append(obs)
        return FakeAnnotation(obs, texts={"uk": self.reason, "en": "Not enough money"})


def request(script: str, *args: str, channel: str = "PJSIP/caller-00000008") -> bytes:
    return agi_request(script, *args, channel=channel, uniqueid="1795422919.16")


async def fake_asterisk(port: int, req: bytes, variables: dict[str, bytes]) -> list[bytes]:
    """Plays Asterisk: sends the request, answers every command, returns the raw command lines it received."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return await play_res_agi(reader, writer, req, variables)


@pytest_asyncio.fixture
async def agi():
    resolver = FakeResolver()
    published = []
    server = AgiServer(make_routes(resolver, default_catalog=None, on_annotation=published.append),
                       host="127.0.0.1", port=0, timeout=5.0)
    await server.start()
    server.test_resolver = resolver
    server.test_published = published
    yield server
    await server.close()


def set_commands(received: list[bytes]) -> dict[str, str]:
    out = {}
    for line in received:
        words = unquote_args(line.decode("utf-8").rstrip("\n"))
        if words[:2] == ["SET", "VARIABLE"]:
            assert len(words) == 4, words
            out[words[2]] = words[3]
    return out


@pytest.mark.asyncio
async def test_annotate_reads_the_b_leg_and_writes_every_cdr_field(agi: AgiServer) -> None:
    variables = {
        COMBINED: own(B_LEG, "CHANUNAVAIL", B_LEG, "lifecell", "21", B_LEG),
        leg(B_LEG): f"41{SEPARATOR}SIP 409 Not enough money".encode(),
    }
    received = await fake_asterisk(agi.port, request("annotate?lang=uk"), variables)
    written = set_commands(received)
    assert list(written) == [f"CDR({name})" for name in (*CDR_FIELDS, "pbx_attempts")]
    assert written["CDR(pbx_code)"] == "409"
    assert written["CDR(pbx_phrase)"] == "Not enough money"
    assert written["CDR(pbx_reason)"] == "Недостатньо коштів"
    assert written["CDR(pbx_q850)"] == "41"
    assert written["CDR(pbx_retry)"] == "failover"
    (obs,) = agi.test_resolver.seen
    assert (obs.trunk, obs.catalog, obs.dial_status, obs.channel) == ("trunk", "lifecell", "CHANUNAVAIL", B_LEG)
    assert len(agi.test_published) == 1
    assert agi.stats.completed == 1


@pytest.mark.asyncio
async def test_hostile_phrase_never_adds_a_command_line(agi: AgiServer) -> None:
    agi.test_resolver.reason = CRLF_TEXT
    phrase = HOSTILE.encode() + b"\xff\xfe\xc3(" + b"x" * 2048
    variables = {
        COMBINED: own(B_LEG, "NOANSWER", "", "", "41"),
        leg(B_LEG): f"41{SEPARATOR}".encode() + b"SIP 409 " + phrase + SEPARATOR.encode() + b"fake",
    }
    received = await fake_asterisk(agi.port, request("annotate?lang=uk"), variables)
    # two reads, the plain values in one EXEC MSet (refused by this stand-in), then one SET per field and the
    # attempts, nothing else
    assert len(received) == 2 + 1 + len(CDR_FIELDS) + 1
    written = set_commands(received)
    assert set(written) == {f"CDR({name})" for name in (*CDR_FIELDS, "pbx_attempts")}
    for value in written.values():
        assert len(value.encode("utf-8")) <= 255
        assert "\r" not in value and "\n" not in value and "\x00" not in value
    assert written["CDR(pbx_phrase)"].startswith('Not "enough" money\\; $(rm -rf)')
    assert written["CDR(pbx_reason)"] == "line one SET VARIABLE CDR(owned) 1 EXEC System reboot"


@pytest.mark.asyncio
async def test_annotate_without_keys_uses_the_bleg_argument_and_cancel_gives_487(agi: AgiServer) -> None:
    variables = {WITH_BLEG: own("", "CANCEL", "PJSIP/caller-00000008", "", "127")}
    await fake_asterisk(agi.port, request("annotate", f"bleg={B_LEG}"), variables)
    (obs,) = agi.test_resolver.seen
    assert obs.sip_code == "487" and obs.phrase is None and obs.hangup_by.value == "caller"


@pytest.mark.asyncio
async def test_annotate_with_several_keys_asks_each_leg_and_takes_the_final_answer(agi: AgiServer) -> None:
    first, second = "PJSIP/other-0000000a", B_LEG
    variables = {
        COMBINED: own(f"{first},{second}", "BUSY", "", "", "17"),
        leg(first): f"16{SEPARATOR}SIP 183 Session Progress".encode(),
        leg(second): f"17{SEPARATOR}SIP 486 Busy Here".encode(),
    }
    received = await fake_asterisk(agi.port, request("annotate"), variables)
    assert len(received) == 3 + 1 + len(CDR_FIELDS) + 1
    (obs,) = agi.test_resolver.seen
    assert (obs.sip_code, obs.phrase, obs.channel, obs.q850) == ("486", "Busy Here", B_LEG, 17)


@pytest.mark.asyncio
async def test_annotate_refuses_an_expression_smuggled_in_the_bleg_argument(agi: AgiServer) -> None:
    received = await fake_asterisk(agi.port, request("annotate", "bleg=${SHELL(id)}"), {})
    assert not any(b"SHELL" in line for line in received)


@pytest.mark.asyncio
async def test_lookup_sets_channel_variables_for_the_dialplan(agi: AgiServer) -> None:
    received = await fake_asterisk(
        agi.port, request("lookup?code=503&phrase=Simultaneous%20calls%20limit%20reached&catalog=lifecell"), {})
    written = set_commands(received)
    assert written["pbx_retry"] == "failover" and written["pbx_code"] == "503"
    (obs,) = agi.test_resolver.seen
    assert obs.catalog == "lifecell" and obs.phrase == "Simultaneous calls limit reached"


@pytest.mark.asyncio
async def test_early_close_costs_nothing_and_the_server_keeps_serving(agi: AgiServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", agi.port)
    writer.write(b"agi_network: yes\nagi_network_scr")
    await writer.drain()
    writer.close()
    assert await reader.read() == b""
    _, writer = await asyncio.open_connection("127.0.0.1", agi.port)
    writer.close()
    received = await fake_asterisk(agi.port, request("lookup?code=486"), {})
    assert len(received) == len(CDR_FIELDS)
    assert agi.stats.sessions == 1 and agi.stats.bad_requests >= 1


@pytest.mark.asyncio
@pytest.mark.parametrize("garbage", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x00\xa5\x01\x00\n",
                                     b"agi_x: " + b"y" * 20000], ids=["http", "tls", "long-line"])
async def test_garbage_is_dropped_without_a_session(agi: AgiServer, garbage: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", agi.port)
    writer.write(garbage)
    await writer.drain()
    assert await reader.read() == b""  # the server closed on us
    writer.close()
    assert agi.stats.sessions == 0 and agi.stats.bad_requests == 1


@pytest.mark.asyncio
async def test_unknown_script_is_closed_without_commands(agi: AgiServer) -> None:
    received = await fake_asterisk(agi.port, request("rm-rf"), {})
    assert received == [] and agi.stats.unknown_script == 1


@pytest.mark.asyncio
async def test_silent_client_is_closed_at_the_session_timeout() -> None:
    server = AgiServer({}, host="127.0.0.1", port=0, timeout=0.05)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        assert server.stats.timeouts == 1
    finally:
        await server.close()


# -- bounded memory: bytes per session, sessions at once ----------------------------------------------------------

FLOOD_LINE = b"agi_arg_1: " + b"x" * (8 * 1024 - 20) + b"\n"  # just under the parser's 8 KB line limit


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the server has closed (or reset) the connection."""
    try:
        while await asyncio.wait_for(reader.read(65536), 10):
            pass
    except ConnectionError:
        pass
    return True


async def one_set(session) -> None:
    """A handler as short as a real one: one command, then the session ends."""
    await session.set_variable("pbx_seen", "1")


@pytest_asyncio.fixture
async def small_agi():
    """A server with small limits: 4 connections at once, 16 KB per session."""
    server = AgiServer({"lookup": one_set}, host="127.0.0.1", port=0, timeout=5.0, max_sessions=4,
                       max_session_bytes=16 * 1024)
    await server.start()
    yield server
    await server.close()


@pytest.mark.asyncio
async def test_a_connection_that_sends_more_than_max_session_bytes_is_dropped_and_counted(small_agi: AgiServer
                                                                                          ) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", small_agi.port)
    writer.write(FLOOD_LINE * 3)  # 24 KB of environment lines, each one valid: only the session bound stops it
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    assert await closed_by_server(reader)
    writer.close()
    assert small_agi.stats.too_large == 1 and small_agi.stats.refusals["too_large"] == 1
    received = await fake_asterisk(small_agi.port, request("lookup?code=486"), {})
    assert len(received) == 1  # and the next real session is served


@pytest.mark.asyncio
async def test_past_max_sessions_an_unfinished_request_makes_room_for_a_real_session(small_agi: AgiServer
                                                                                              ) -> None:
    holders = []
    for _ in range(6):  # a flood: connections that send part of a request and hold it
        reader, writer = await asyncio.open_connection("127.0.0.1", small_agi.port)
        writer.write(FLOOD_LINE)
        await writer.drain()
        holders.append((reader, writer))
    await wait_until(lambda: small_agi.stats.evicted == 2)  # two of the six made room for the last two
    assert small_agi.stats.active == 4
    received = await fake_asterisk(small_agi.port, request("lookup?code=486"), {})
    assert len(received) == 1
    assert small_agi.stats.evicted == 3 and small_agi.stats.refused_busy == 0
    for _, writer in holders:
        writer.close()


@pytest.mark.asyncio
async def test_when_every_slot_runs_a_handler_a_new_connection_is_refused_and_counted() -> None:
    release = asyncio.Event()

    async def slow(session) -> None:
        await release.wait()

    server = AgiServer({"slow": slow}, host="127.0.0.1", port=0, timeout=5.0, max_sessions=2)
    await server.start()
    writers = []
    try:
        for _ in range(2):
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(request("slow"))
            writers.append(writer)
        await wait_until(lambda: server.stats.sessions == 2)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writers.append(writer)
        writer.write(request("slow"))
        assert await closed_by_server(reader)
        assert server.stats.refused_busy == 1 and server.stats.refusals["busy"] == 1
        release.set()
        await wait_until(lambda: server.stats.completed == 2)
        received = await fake_asterisk(server.port, request("slow"), {})  # a slot is free again
        assert received == [] and server.stats.completed == 3
    finally:
        release.set()
        for writer in writers:
            writer.close()
        await server.close()


@pytest.mark.asyncio
async def test_under_a_flood_of_huge_requests_every_flood_connection_is_cut_and_real_sessions_are_answered() -> None:
    server = AgiServer({"lookup": one_set}, host="127.0.0.1", port=0, timeout=5.0, max_sessions=64,
                       max_session_bytes=16 * 1024)
    await server.start()
    try:
        await _flood_with_real_sessions(server)
    finally:
        await server.close()


async def _flood_with_real_sessions(small_agi: AgiServer) -> None:
    stop = asyncio.Event()

    async def flood() -> None:
        while not stop.is_set():  # connect, send 2 MB of environment lines (or until cut), again
            with contextlib.suppress(ConnectionError):
                reader, writer = await asyncio.open_connection("127.0.0.1", small_agi.port)
                try:
                    for _ in range(256):
                        writer.write(FLOOD_LINE)
                        await writer.drain()
                finally:
                    writer.close()
                await closed_by_server(reader)

    flooders = [asyncio.ensure_future(flood()) for _ in range(20)]
    try:
        await wait_until(lambda: small_agi.stats.too_large + small_agi.stats.evicted >= 40)  # the flood is on
        answered = [await fake_asterisk(small_agi.port, request("lookup?code=486"), {}) for _ in range(5)]
    finally:
        stop.set()
        await asyncio.gather(*flooders)
    assert all(len(r) == 1 for r in answered), (answered, small_agi.stats)
    await wait_until(lambda: small_agi.stats.active == 0)
    assert small_agi.stats.completed == 5


@pytest.mark.asyncio
async def test_a_connection_that_sends_nothing_holds_no_slot_and_is_closed_after_the_request_timeout() -> None:
    server = AgiServer({"lookup": one_set}, host="127.0.0.1", port=0, timeout=5.0, max_sessions=1,
                       request_timeout=0.05)
    await server.start()
    try:
        idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(3)]
        await wait_until(lambda: server.stats.open == 3)
        assert server.stats.active == 0  # nothing sent, no slot taken: the one slot is free for a real session
        assert await fake_asterisk(server.port, request("lookup"), {}) == [b"SET VARIABLE pbx_seen 1\n"]
        for reader, writer in idle:
            assert await closed_by_server(reader)
            writer.close()
        assert server.stats.request_timeouts == 3 and server.stats.refusals["request_timeout"] == 3
    finally:
        await server.close()


@pytest.mark.asyncio
async def test_at_most_four_connections_per_slot_are_open_at_all() -> None:
    server = AgiServer({"lookup": one_set}, host="127.0.0.1", port=0, timeout=5.0, max_sessions=1)
    await server.start()
    try:
        idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(5)]
        assert await closed_by_server(idle[4][0])
        assert server.stats.refused_busy == 1 and server.stats.open == 4
        for _, writer in idle:
            writer.close()
    finally:
        await server.close()


def test_limits_come_from_the_agi_section_and_bad_values_name_the_key() -> None:
    from pbx_codes.adapters.agi_server import agi_limits

    assert agi_limits({}) == {"max_sessions": 256, "max_session_bytes": 32768}
    assert agi_limits({"max_sessions": 8, "max_session_bytes": 4096}) == {"max_sessions": 8, "max_session_bytes": 4096}
    with pytest.raises(ValueError, match="max_sessions"):
        agi_limits({"max_sessions": 0})
    with pytest.raises(ValueError, match="max_session_bytes"):
        agi_limits({"max_session_bytes": "big"})


@pytest.mark.asyncio
async def test_a_second_command_while_the_first_is_unanswered_is_refused_and_never_written() -> None:
    from pbx_codes.adapters.agi_server import AgiSession, StateError

    outcome: dict[str, object] = {}

    async def pipelining(session: AgiSession) -> None:
        first = asyncio.ensure_future(session.command("GET", "FULL", "VARIABLE", "${A}"))
        await asyncio.sleep(0)  # the first command is on the wire, its reply not back yet
        try:
            await session.command("GET", "FULL", "VARIABLE", "${B}")
        except StateError as exc:
            outcome["refused"] = str(exc)
        outcome["first"] = (await first).value

    server = await AgiServer({"pipe": pipelining}, port=0).start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        lines = await play_res_agi(reader, writer, agi_request("pipe", channel=B_LEG, uniqueid="1.1"),
                                   {"${A}": b"a"})
    finally:
        await server.close()
    assert [unquote_args(line.decode().rstrip("\n"))[3] for line in lines] == ["${A}"]  # res_agi saw one command
    assert outcome == {"refused": outcome.get("refused"), "first": "a"} and "command" in str(outcome["refused"])
    assert server.stats.completed == 1
