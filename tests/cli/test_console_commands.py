"""`pbx-codes tail` and `stats` against a running console: one line per hangup, counts per window, and no way for
a carrier phrase to put control characters on the operator's terminal."""
from __future__ import annotations

import argparse
import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from console.support import FakeAlerts, hangup
from pbx_codes.cli.common import CliError
from pbx_codes.cli.console_commands import SseParser, format_hangup, format_stats, read_events, register, terminal_safe
from pbx_codes.console import ConsoleSettings, start_console
from pbx_codes.console.app import HUB
from pbx_codes.resolve import Resolver
from pbx_codes.sinks.bus import AnnotationBus
from support.waiting import wait_until


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pbx-codes")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def run(argv: list[str]) -> str:
    out = io.StringIO()
    args = parse(argv)
    assert args.func(args, out=out) == 0
    return out.getvalue()


class Running:
    def __init__(self, bus: AnnotationBus, alerts: FakeAlerts, runner: Any, url: str) -> None:
        self.bus, self.alerts, self.runner, self.url = bus, alerts, runner, url

    async def streams_open(self, n: int) -> None:
        """Wait until `n` event streams are connected."""
        await wait_until(lambda: len(self.runner.app[HUB].clients) >= n, what=f"{n} event streams connected")


@pytest_asyncio.fixture
async def console() -> AsyncIterator[Running]:
    bus, alerts = AnnotationBus(), FakeAlerts()
    runner, port = await start_console(ConsoleSettings(port=0), bus, None, None, alerts)
    yield Running(bus, alerts, runner, f"http://127.0.0.1:{port}")
    await runner.cleanup()


# ---- pure parts --------------------------------------------------------------------------------------------

def test_sse_parser_reads_events_comments_and_multiline_data() -> None:
    lines = [": connected\n", "event: hangup\r\n", 'data: {"a":\n', "data: 1}\n", "\n", "\n",
             "data: not json\n", "\n", "event: alert\n", 'data: {"state": "fired"}\n', "\n"]
    assert list(read_events(lines)) == [("hangup", {"a": 1}), ("alert", {"state": "fired"})]
    parser = SseParser()
    assert parser.feed("event: x\n") is None and parser.feed("\n") is None  # no data: no event


def test_terminal_safe_removes_escape_sequences_and_line_breaks() -> None:
    assert terminal_safe("Busy\x1b]0;owned\x07\r\nFAKE LINE\u202e") == "Busy?]0;owned???FAKE LINE?"


def test_hangup_line_is_plain_without_colour_and_painted_with_it() -> None:
    event = {"time": 0, "pbx": "asterisk", "trunk": "t", "number": "****4567", "code": "486", "phrase": "Busy Here",
             "category": "busy", "texts": {"uk": "зайнято", "en": "busy"}}
    plain = format_hangup(event, "uk", colour=False)
    assert "\x1b" not in plain and plain.endswith('t ****4567 486 "Busy Here" [busy] зайнято')
    assert "\x1b[33m[busy]\x1b[0m" in format_hangup(event, "en", colour=True)


def test_stats_table_has_a_column_per_window() -> None:
    text = format_stats({"windows": [1, 5, 15], "total": [1, 2, 3], "by_trunk": {"lifecell-trunk": [1, 2, 3]},
                         "by_category": {"busy": [0, 0, 1], "capacity": [1, 2, 2]},
                         "failure_rate": [{"total": 0, "rate": 0}, {"total": 4, "rate": 0.25}]})
    lines = text.splitlines()
    assert lines[0].split() == ["trunk", "1", "min", "5", "min", "15", "min"]
    assert lines[1].split() == ["lifecell-trunk", "1", "2", "3"]
    assert [line.split()[0] for line in lines[4:6]] == ["capacity", "busy"]  # most in 15 min first
    assert lines[-1].endswith("-  25")


# ---- against a running console -----------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_tail_prints_one_plain_line_per_hangup(console: Running, resolver: Resolver) -> None:
    task = asyncio.ensure_future(asyncio.to_thread(run, ["tail", "--url", console.url, "--lang", "uk",
                                                         "--count", "2"]))
    await console.streams_open(1)
    console.bus.publish(hangup(resolver))
    console.alerts.emit(state="fired", name="capacity", message="too many 503")
    console.bus.publish(hangup(resolver, sip="486", phrase="Busy\x1b[2J\r\nInjected", trunk="gw-b"))
    lines = (await task).splitlines()
    assert len(lines) == 3 and "\x1b" not in "".join(lines)
    assert "ALERT FIRED capacity: too many 503" in lines  # alerts do not queue behind the bus: any position
    first, second = [line for line in lines if not line.startswith("ALERT")]
    assert first.split()[1:6] == ["asterisk", "lifecell-trunk", "+********4567", "503", '"Simultaneous']
    assert first.endswith("[capacity] перевищено ліміт одночасних викликів.")
    assert '"Busy?[2J??Injected" [busy]' in second


@pytest.mark.asyncio
async def test_tail_json_passes_events_through(console: Running, resolver: Resolver) -> None:
    import json
    task = asyncio.ensure_future(asyncio.to_thread(run, ["tail", "--url", console.url, "--json", "--count", "1"]))
    await console.streams_open(1)
    console.bus.publish(hangup(resolver))
    event = json.loads(await task)
    assert event["event"] == "hangup" and event["code"] == "503" and event["number"] == "+********4567"


@pytest.mark.asyncio
async def test_stats_prints_the_window_counts(console: Running, resolver: Resolver) -> None:
    task = asyncio.ensure_future(asyncio.to_thread(run, ["tail", "--url", console.url, "--count", "1"]))
    await console.streams_open(1)
    console.bus.publish(hangup(resolver))
    await task  # the console has taken it in
    text = await asyncio.to_thread(run, ["stats", "--url", console.url])
    assert "lifecell-trunk" in text and any(line.split() == ["capacity", "1", "1", "1"] for line in text.splitlines())


@pytest.mark.asyncio
async def test_commands_send_the_token_and_explain_a_refusal(resolver: Resolver, monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path) -> None:
    runner, port = await start_console(ConsoleSettings(host="127.0.0.1", port=0, token="s3cret"), AnnotationBus())
    url = f"http://127.0.0.1:{port}"
    try:
        monkeypatch.delenv("PBX_CODES_CONSOLE_TOKEN", raising=False)
        with pytest.raises(CliError, match="401"):
            await asyncio.to_thread(run, ["stats", "--url", url])
        monkeypatch.setenv("PBX_CODES_CONSOLE_TOKEN", "s3cret")
        assert "(no hangups)" in await asyncio.to_thread(run, ["stats", "--url", url])
        monkeypatch.delenv("PBX_CODES_CONSOLE_TOKEN")
        (tmp_path / "token").write_text("s3cret\n")
        assert "(no hangups)" in await asyncio.to_thread(run, ["stats", "--url", url, "--token-file",
                                                               str(tmp_path / "token")])
    finally:
        await runner.cleanup()


def test_unreachable_console_is_a_clear_error() -> None:
    import socket
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(CliError, match="cannot be reached"):
        run(["stats", "--url", f"http://127.0.0.1:{port}"])
    with pytest.raises(CliError, match="http"):
        run(["stats", "--url", "file:///etc/passwd"])


# ---- redirects ---------------------------------------------------------------------------------------------

async def _serve(handler) -> tuple[Any, str]:
    from aiohttp import web
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


STATS = {"windows": [1, 5, 15], "by_trunk": {}, "by_category": {}}


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_the_token_never_follows_a_redirect_to_another_origin(monkeypatch: pytest.MonkeyPatch,
                                                                    status: int) -> None:
    from aiohttp import web
    seen: list[str | None] = []

    async def elsewhere(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response(STATS)

    other, other_url = await _serve(elsewhere)

    async def redirect(request: web.Request) -> web.Response:
        # another port, or another name for the same machine: another origin either way
        target = other_url.replace("127.0.0.1", "localhost") if status == 302 else other_url
        return web.Response(status=status, headers={"Location": target + "/api/stats"})

    first, first_url = await _serve(redirect)
    monkeypatch.setenv("PBX_CODES_CONSOLE_TOKEN", "s3cret")
    try:
        try:
            await asyncio.to_thread(run, ["stats", "--url", first_url])
        except CliError:
            pass      # refusing to follow is as good as following without the token
        assert "Bearer s3cret" not in seen
    finally:
        await first.cleanup()
        await other.cleanup()


@pytest.mark.asyncio
async def test_the_token_follows_a_redirect_within_the_same_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    from aiohttp import web
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        if request.path == "/old/api/stats":
            raise web.HTTPFound("/api/stats")
        seen.append(request.headers.get("Authorization"))
        return web.json_response(STATS)

    runner, url = await _serve(handler)
    monkeypatch.setenv("PBX_CODES_CONSOLE_TOKEN", "s3cret")
    try:
        assert "(no hangups)" in await asyncio.to_thread(run, ["stats", "--url", url + "/old"])
        assert seen == ["Bearer s3cret"]
    finally:
        await runner.cleanup()
