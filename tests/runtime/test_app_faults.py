"""Fault injection: `serve` with every part on, each dependency broken in turn, the other parts answering throughout.

The parts: the AMI listener (against the protocol-faithful AMI server), FastAGI, the ESL listener (against the
ESL server that speaks as the recorded FreeSWITCH did), the FreeSWITCH hook endpoint, the store on a real
PostgreSQL, the console, /metrics and an alert with a webhook. Broken in turn: the AMI login refused, Asterisk
unreachable, the ESL password refused, PostgreSQL stopped, the webhook down. After each break, FastAGI annotates, the
hook answers, the console and /metrics answer, and the broken part's state is shown; then it is mended and comes
back by itself.
"""
from __future__ import annotations

import asyncio
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import urlencode

import pytest

from adapters.agi_test_client import agi_request, play_res_agi
from adapters.ami_test_server import AmiTestServer
from adapters.esl_test_server import PASSWORD, FakeFreeswitch
from pbx_codes.catalog import load_catalogs
from pbx_codes.config import parse_config
from pbx_codes.resolve import Resolver
from pbx_codes.runtime.app import serve
from support.hook_client import post_hook
from support.waiting import eventually

AMI_SECRET_ENV, AMI_SECRET = "PBXC_FAULTS_AMI_SECRET", "faults-ami-secret-5e1"
ESL_PASSWORD_ENV = "PBXC_FAULTS_ESL_PASSWORD"
HOOK_FORM = {"uuid": "b-leg", "call_uuid": "a-leg", "direction": "outbound", "sip_gateway_name": "gw409",
             "sip_invite_failure_status": "409", "sip_invite_failure_phrase": "Not enough money",
             "sip_hangup_disposition": "recv_refuse", "hangup_cause": "NORMAL_UNSPECIFIED"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Webhook:
    """An HTTP receiver on a fixed loopback port that can be taken down and brought back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[dict[str, Any]] = []
        self._server: HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = HTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()  # type: ignore[union-attr]
            self._server = None


async def http(port: int, method: str, path: str, body: bytes = b"") -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {len(body)}"
                 f"\r\n\r\n".encode() + body)
    await writer.drain()
    raw = (await reader.read()).decode("utf-8", errors="replace")
    writer.close()
    head, _, payload = raw.partition("\r\n\r\n")
    return int(head.split(" ")[1]), payload


class Running:
    """The `serve` under test and the addresses of its parts."""

    def __init__(self, console: int, agi: int, hook: int) -> None:
        self.console, self.agi, self.hook = console, agi, hook

    async def states(self) -> dict[str, str]:
        """Part name -> state, from the console's /api/health."""
        status, body = await http(self.console, "GET", "/api/health")
        assert status == 200
        return {p["part"]: p["state"] for p in json.loads(body)["parts"]}

    async def state_of(self, prefix: str) -> str | None:
        return next((s for name, s in (await self.states()).items() if name.startswith(prefix)), None)

    async def reaches(self, prefix: str, state: str) -> None:
        async def there() -> bool:
            return await self.state_of(prefix) == state
        await eventually(there, what=f"{prefix} {state}")

    async def everything_else_answers(self, broken: str) -> None:
        """FastAGI annotates, the hook answers, the console and /metrics answer; /metrics shows what is broken."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.agi)
        commands = await asyncio.wait_for(play_res_agi(
            reader, writer, agi_request("annotate", "bleg=PJSIP/trunk-00000007", channel="PJSIP/caller-00000006",
                                        uniqueid="1795422912.12"), {}), 10)
        assert any(c.startswith(b"SET VARIABLE CDR(pbx_category)") for c in commands), (broken, commands)
        status, payload = await asyncio.wait_for(post_hook(self.hook, urlencode(HOOK_FORM).encode()), 10)
        assert status == 200 and b"pbx_category=billing" in payload, broken
        status, page = await asyncio.wait_for(http(self.console, "GET", "/"), 10)
        assert status == 200 and "pbx-codes" in page, broken
        status, metrics = await asyncio.wait_for(http(self.console, "GET", "/metrics"), 10)
        assert status == 200, broken
        down = [line for line in metrics.splitlines()
                if line.startswith("pbx_codes_part_up{") and line.endswith(" 0.0")]
        assert any(broken in line for line in down), (broken, down)


@pytest.mark.asyncio
async def test_each_broken_dependency_leaves_every_other_part_answering(
        postgres_server, postgres_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(AMI_SECRET_ENV, AMI_SECRET)
    monkeypatch.setenv(ESL_PASSWORD_ENV, PASSWORD)
    ami = await AmiTestServer(secret=AMI_SECRET).start()
    esl = FakeFreeswitch(after_subscribe="silent")
    await esl.start()
    webhook = Webhook()
    webhook.start()
    parts = Running(console=free_port(), agi=free_port(), hook=free_port())
    fast = {"probe_interval": 0.05}
    config = parse_config({
        "bindings": {"gw409": "lifecell", "gw-webhook": "lifecell"},
        "asterisk": {"ami": {"enabled": True, "port": ami.port, "secret_env": AMI_SECRET_ENV, "refused_backoff": 0.2,
                             "backoff_initial": 0.05, "backoff_max": 0.2, **fast},
                     "agi": {"port": parts.agi}},
        "freeswitch": {"port": esl.port, "password_env": ESL_PASSWORD_ENV, "hook_port": parts.hook,
                       "hook_publish": True, "auth_failure_backoff": 0.2, "reconnect_min": 0.05, "reconnect_max": 0.2,
                       **fast},
        "store": {"url": postgres_url, "retry_max": 0.2, "flush_ms": 20, "journal": str(tmp_path / "journal.jsonl")},
        "alerts": [{"name": "webhook check", "trunk": "gw-webhook", "category": "billing", "count_at_least": 1,
                    "window": 60, "webhook": webhook.url}],
    })
    resolver = Resolver(load_catalogs(), bindings=dict(config.bindings))
    stop = asyncio.Event()
    task = asyncio.create_task(serve(config, resolver, console=f"127.0.0.1:{parts.console}", stop=stop))
    try:
        async def console_up() -> bool:
            try:
                return (await http(parts.console, "GET", "/healthz"))[0] == 200
            except OSError:
                return False
        await eventually(console_up, what="the console listens")
        for prefix in ("AMI", "ESL", "store", "FastAGI"):
            await parts.reaches(prefix, "up")

        # 1. Asterisk refuses the login
        ami.secret = "changed-on-the-pbx"
        await ami.stop()
        await ami.start()
        await parts.reaches("AMI", "refused")
        await parts.everything_else_answers("AMI")
        ami.secret = AMI_SECRET
        await parts.reaches("AMI", "up")

        # 2. Asterisk unreachable
        await ami.stop()
        await parts.reaches("AMI", "unreachable")
        await parts.everything_else_answers("AMI")
        await ami.start()
        await parts.reaches("AMI", "up")

        # 3. FreeSWITCH refuses the password
        esl.password = "changed-on-the-pbx"
        await esl.stop()
        await esl.start()
        await parts.reaches("ESL", "refused")
        await parts.everything_else_answers("ESL")
        esl.password = PASSWORD
        await parts.reaches("ESL", "up")

        # 4. PostgreSQL down (the hook publishes every answer, so the store has rows to write)
        await asyncio.to_thread(postgres_server.stop)
        await post_hook(parts.hook, urlencode(HOOK_FORM).encode())
        await parts.reaches("store", "down")
        await parts.everything_else_answers("store")
        await asyncio.to_thread(postgres_server.start)
        await parts.reaches("store", "up")

        # 5. the alert webhook down when an alert fires
        webhook.stop()
        await post_hook(parts.hook, urlencode({**HOOK_FORM, "sip_gateway_name": "gw-webhook"}).encode())
        await parts.reaches("alert webhook", "down")
        await parts.everything_else_answers("alert webhook")
        webhook.start()
        await parts.reaches("alert webhook", "up")
        assert [(e["name"], e["state"]) for e in webhook.received] == [("webhook check", "fired")]
        assert not task.done(), "serve ran through every fault"
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        webhook.stop()
        await ami.stop()
        await esl.close()
