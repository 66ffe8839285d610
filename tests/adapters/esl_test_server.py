"""A test server that speaks mod_event_socket as the recorded FreeSWITCH did, on 127.0.0.1.

Shared by the ESL client and listener tests: auth/request, ``+OK accepted`` / ``-ERR invalid``, ``event``,
``api uuid_setvar``, ``bgapi`` with its BACKGROUND_JOB, then the recorded event frames byte for byte.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from support.paths import FIXTURES as FIXTURES_ROOT

FIXTURES = FIXTURES_ROOT / "freeswitch"
PASSWORD = "ClueCon"


def recorded_events(name: str) -> bytes:
    """The event frames FreeSWITCH sent after the subscription reply, byte-exact, disconnect notice included."""
    data = (FIXTURES / name).read_bytes()
    marker = b"Reply-Text: +OK event listener enabled json\n\n"
    return data[data.index(marker) + len(marker):]


def reply(text: str, **headers: str) -> bytes:
    extra = "".join(f"{k}: {v}\n" for k, v in headers.items())
    return f"Content-Type: command/reply\nReply-Text: {text}\n{extra}\n".encode()


def api_response(text: str) -> bytes:
    body = text.encode()
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(body) + body


def heartbeat() -> bytes:
    """A HEARTBEAT event as FreeSWITCH sends it every 20 s in JSON format (the fields a listener reads)."""
    payload = json.dumps({"Event-Name": "HEARTBEAT", "Core-UUID": "6b5d8a2e-heartbeat", "Session-Count": "0"}).encode()
    return b"Content-Length: %d\nContent-Type: text/event-json\n\n" % len(payload) + payload


def background_job(job_uuid: str, body: str) -> bytes:
    payload = json.dumps({"Event-Name": "BACKGROUND_JOB", "Job-UUID": job_uuid, "Job-Command": "originate",
                          "_body": body}).encode()
    return b"Content-Length: %d\nContent-Type: text/event-json\n\n" % len(payload) + payload


class FakeFreeswitch:
    """mod_event_socket as recorded: auth/request, +OK accepted / -ERR invalid, event, api, bgapi, then the events."""

    def __init__(self, *, after_subscribe: str = "recording", recording: str = "409_not_enough_money.bridge.json"
                 ".esl.txt", hung_up: frozenset[str] = frozenset(), streams: Sequence[bytes] = ()) -> None:
        self.after_subscribe = after_subscribe
        self.recording = recorded_events(recording)
        # mode "streams": connection n gets streams[n-1] and is then closed; later connections stay silent.
        self.streams = list(streams)
        self.streamed = 0  # streams written out completely
        self.hung_up = hung_up
        self.connections = 0
        self.auth_attempts: list[str] = []
        self.commands: list[str] = []
        self.subscribed = asyncio.Event()
        self.password = PASSWORD  # change it to have the next logins refused
        self.writers: list[asyncio.StreamWriter] = []
        self.port = 0
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        """Listen on 127.0.0.1: a fresh port the first time, the same one again after `close` (a restart)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def stop(self) -> None:
        """FreeSWITCH goes down: stop listening (connects are refused) and drop every connection."""
        for writer in self.writers:
            writer.transport.abort()
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            writer.write(b"Content-Type: auth/request\n\n")
            if self.after_subscribe == "close_before_auth":
                return
            while True:
                block = (await reader.readuntil(b"\n\n")).decode()
                self.commands.append(block)
                line, *header_lines = block.strip("\n").split("\n")
                headers = dict(h.split(": ", 1) for h in header_lines)
                verb, _, rest = line.partition(" ")
                if verb == "auth":
                    self.auth_attempts.append(rest)
                    if rest != self.password:
                        writer.write(reply("-ERR invalid"))
                        await writer.drain()
                        return
                    writer.write(reply("+OK accepted"))
                elif verb == "event":
                    writer.write(reply(f"+OK event listener enabled {rest.split()[0]}"))
                    await writer.drain()
                    self.subscribed.set()
                    await self._after_subscribe(writer)
                elif verb == "api":
                    cmd, *args = rest.split(" ")
                    if cmd == "uuid_setvar":
                        writer.write(api_response("-ERR No such channel!\n" if args[0] in self.hung_up else "+OK\n"))
                    else:
                        writer.write(api_response(f"-ERR {cmd} Command not found!\n"))
                elif verb == "bgapi":
                    job = headers.get("Job-UUID", "server-made")
                    writer.write(reply(f"+OK Job-UUID: {job}", **{"Job-UUID": job}))
                    writer.write(background_job("someone-else", "+OK not yours\n"))
                    writer.write(background_job(job, "-ERR NORMAL_UNSPECIFIED\n"))
                else:
                    writer.write(reply("-ERR command not found"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _after_subscribe(self, writer: asyncio.StreamWriter) -> None:
        mode = self.after_subscribe
        if mode == "recording":
            writer.write(self.recording)  # ends with FreeSWITCH's disconnect notice
        elif mode == "garbage":
            writer.write(b"this is not a header line\n\n")
        elif mode == "drop":
            writer.close()
        elif mode == "streams" and self.connections <= len(self.streams):
            writer.write(self.streams[self.connections - 1])
            await writer.drain()
            self.streamed += 1
            writer.close()  # like a FreeSWITCH restart: whatever the stream ended with, the socket goes
        # "silent", "interactive", "streams" past the last one: nothing until the client sends something


__all__ = ["FIXTURES", "FakeFreeswitch", "PASSWORD", "api_response", "background_job", "heartbeat", "recorded_events",
           "reply"]
