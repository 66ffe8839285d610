"""FreeSWITCH restarts in the middle of a burst: the live listener stores what it saw, the calls that ended while
it was away are read back from FreeSWITCH's own json_cdr files, and the store ends with one row per leg of every
call, none twice.

The burst is made of the live2 call shapes, each call with fresh leg UUIDs (the same length, so every frame keeps
its Content-Length). The protocol-faithful server streams the first calls and drops the connection in the middle
of a frame, then refuses connections (FreeSWITCH is down; the calls of that time are never sent), then comes back
and streams the last calls. The json_cdr files of every call (half of them URL-encoded, as mod_json_cdr's default
writes them, half plain) are the backfill's source.
"""
from __future__ import annotations

import asyncio
import socket
import sqlite3
import uuid
from pathlib import Path

import pytest

from adapters.esl_test_server import PASSWORD, FakeFreeswitch, recorded_events
from backfill.json_cdr import write_json_cdrs
from observers.freeswitch_live2 import capture_bytes, resolver, roles
from pbx_codes.cli.main import main
from pbx_codes.observers.freeswitch import replay
from pbx_codes.runtime.esl_listener import run_freeswitch
from pbx_codes.sinks.bus import AnnotationBus
from pbx_codes.store import run_store
from support.waiting import wait_until

PASSWORD_ENV = "PBXC_TEST_BURST_ESL_PASSWORD"
SHAPES = ("failover_503_then_486.bridge", "gateway_down.bridge", "gateway_down.bridge_marked_down",
          "throttled.bridge", "caller_cancel.bridge", "gateway_down.direct", "progress_reason_503.bridge",
          "answered_carrier_bye.direct")
CALLS = 40
NOTICE = b"Content-Type: text/disconnect-notice"


class Call:
    """One call of the burst: a recorded shape with its own leg UUIDs."""

    def __init__(self, n: int) -> None:
        self.shape = SHAPES[n % len(SHAPES)]
        self.renames = {old: str(uuid.uuid5(uuid.NAMESPACE_URL, f"burst-{n}-{old}")) for old in roles(self.shape)}
        events = recorded_events(f"live2/{self.shape}.json.esl.txt")
        self.events = self.renamed(events[:events.rindex(NOTICE)])
        self.a_leg = next(self.renames[u] for u, r in roles(self.shape).items() if r == "A") \
            if "bridge" in self.shape else next(iter(self.renames.values()))

    def renamed(self, data: bytes) -> bytes:
        for old, new in self.renames.items():
            data = data.replace(old.encode(), new.encode())
        return data

    @property
    def legs(self) -> set[str]:
        return set(self.renames.values())

    def capture(self) -> bytes:
        return self.renamed(capture_bytes(self.shape))


class RestartingFreeswitch(FakeFreeswitch):
    """Serves the next queued stream to each subscribed session, then drops it; notes at which connection."""

    def __init__(self) -> None:
        super().__init__(after_subscribe="silent")
        self.queue: list[bytes] = []
        self.served_at: list[int] = []

    async def _after_subscribe(self, writer: asyncio.StreamWriter) -> None:
        if self.queue:
            writer.write(self.queue.pop(0))
            await writer.drain()
            self.served_at.append(self.connections)
            writer.transport.abort()  # FreeSWITCH dies: no disconnect notice, the socket just goes


def section(port: int) -> dict:
    return {"host": "127.0.0.1", "port": port, "password_env": PASSWORD_ENV, "hook": False,
            "reconnect_min": 0.01, "reconnect_max": 0.05, "heartbeat_timeout": 20}


@pytest.mark.asyncio
async def test_a_restart_mid_burst_ends_with_one_row_per_leg_of_every_call_after_the_backfill(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    calls = [Call(n) for n in range(CALLS)]
    before, during, after = calls[:14], calls[14:26], calls[26:]
    cut = during[0].events
    first = b"".join(c.events for c in before) + cut[:len(cut) // 2]  # the drop falls inside a frame
    second = b"".join(c.events for c in after)
    all_legs = set().union(*(c.legs for c in calls))
    db = tmp_path / "store.db"

    server = RestartingFreeswitch()
    server.queue.append(first)
    port = await server.start()
    bus = AnnotationBus(instance=socket.gethostname())  # as serve's, named like the backfill (the host by default)
    store = await run_store({"journal": str(tmp_path / "journal.jsonl")}, bus, url=f"sqlite://{db}")
    clients = []
    task = asyncio.create_task(run_freeswitch(section(port), resolver(), bus,
                                              on_client=lambda name, client: clients.append(client)))
    try:
        await wait_until(lambda: server.served_at and server.connections > server.served_at[0],
                         what="the first stream handled (the client came back after the drop)")
        await server.stop()  # FreeSWITCH is down: connections are refused
        refused_from = clients[0].attempts
        await wait_until(lambda: clients[0].attempts >= refused_from + 2, what="connections refused")
        server.queue.append(second)
        await server.start()  # back on the same port
        await wait_until(lambda: len(server.served_at) == 2 and server.connections > server.served_at[1],
                         what="the second stream handled")
        await store.flush(timeout=20)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
        await server.close()

    with sqlite3.connect(db) as conn:
        live = dict(conn.execute("SELECT uniqueid, rid FROM hangups").fetchall())
    assert set().union(*(c.legs for c in before + after)) <= set(live) < all_legs, "the outage lost calls"
    missed = len(all_legs) - len(live)

    for n, call in enumerate(calls):
        write_json_cdrs(tmp_path / "json_cdr", [call.capture()], encode_values=bool(n % 2))
    backfill = ["backfill", "--pbx", "freeswitch", "--store", f"sqlite://{db}", str(tmp_path / "json_cdr")]
    assert await asyncio.to_thread(main, backfill) == 0  # the command runs its own event loop
    assert f"{missed} new in the store, {len(live)} already there" in capsys.readouterr().out
    assert await asyncio.to_thread(main, backfill) == 0
    assert f"0 new in the store, {len(all_legs)} already there" in capsys.readouterr().out

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT uniqueid, rid, linkedid FROM hangups").fetchall()
        stored = {(u, r) for u, r, _ in rows}
        calls_stored = {linkedid for _, _, linkedid in rows}
    assert len(rows) == len(all_legs) == len({u for u, _ in stored}), "one row per leg, none twice"
    assert set(live.items()) <= stored, "the rows stored live were kept as they were"
    assert calls_stored == {c.a_leg for c in calls}, "store: every call of the burst"
    # what the backfill stored for a call the listener never saw is what the listener would have stored
    expected = {a.observation.leg_id: (a.code, a.category.value, a.hangup_by.value)
                for c in during[1:] for a in replay(c.capture(), resolver())}
    with sqlite3.connect(db) as conn:
        got = {u: (code, cat, by) for u, code, cat, by in conn.execute(
            "SELECT uniqueid, code, category, hangup_by FROM hangups")}
    assert {u: got[u] for u in expected} == expected
