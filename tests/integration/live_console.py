"""Helpers for the live console test: `pbx-codes serve` on a background loop, the calls placed, and what the page saw.

The test drives sipp and a browser synchronously, so the program runs on its own event loop in a daemon thread,
exactly as `serve` runs it (same `pbx_codes.runtime.app.serve`, same configuration file), and is stopped through its
`stop` event. Nothing here knows the program's internals: what it did is read back from the console's HTTP API,
its `/metrics`, the SQLite file and Asterisk's own view of its AMI sessions.
"""
from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import statistics
import time
import urllib.request
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pbx_codes.catalog import Entry, load_catalogs
from pbx_codes.config import Config, load_config
from pbx_codes.resolve import Resolver
from pbx_codes.runtime.app import serve
from pbx_codes.testbed.asterisk import AsteriskBench
from pbx_codes.testbed.inprocess import BackgroundLoop
from support.waiting import block_until

#: Records, in the page, the first moment each feed row (keyed by its call id) entered the DOM.
FEED_WATCH_JS = """
() => {
  window.__feedSeen = window.__feedSeen || {};
  const body = document.querySelector('#feed tbody');
  new MutationObserver((mutations) => {
    const now = (performance.timeOrigin + performance.now()) / 1000;
    for (const m of mutations) for (const node of m.addedNodes) {
      const id = node.nodeType === 1 ? node.dataset.linkedid : undefined;
      if (id && !(id in window.__feedSeen)) window.__feedSeen[id] = now;
    }
  }).observe(body, { childList: true });
}
"""


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(path: Path, bench: AsteriskBench, *, secret_env: str, alerts: list[dict[str, Any]]) -> Path:
    """The pbx-codes.toml an operator would write for this bench: AMI + FastAGI, trunk bound to lifecell, alerts."""
    host, agi_port = bench.agi_address.rsplit(":", 1)
    lines = [
        'language = "uk"',
        "[bindings]",
        'trunk = "lifecell"',
        "[asterisk.ami]",
        "enabled = true",
        'host = "127.0.0.1"',
        f"port = {bench.ami_port}",
        f'username = "{bench.ami_user}"',
        f'secret_env = "{secret_env}"',
        "ping_interval = 5.0",
        "backoff_max = 1.0",
        "[asterisk.agi]",
        f'host = "{host}"',
        f"port = {int(agi_port)}",
        "[store]",
        "flush_ms = 50",
    ]
    for rule in alerts:
        lines.append("[[alerts]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in rule.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def resolver_for(config: Config) -> Resolver:
    """What `pbx-codes serve` builds from the same file (see `cli.common.resolver_from`)."""
    return Resolver(load_catalogs(list(config.catalog_dirs)), bindings=config.bindings,
                    default_catalog=config.default_catalog)


class ServeInBackground:
    """`pbx_codes.runtime.app.serve` on its own loop; `stop()` sets its stop event and re-raises whatever ended it."""

    def __init__(self, config_path: Path, *, store_url: str, console: str) -> None:
        self.config = load_config(config_path)
        self.store_url, self.console = store_url, console
        self.base = f"http://{console}"
        self._loop = BackgroundLoop()
        self._stop = asyncio.Event()
        self._future: Future[None] = asyncio.run_coroutine_threadsafe(
            serve(self.config, resolver_for(self.config), store_url=store_url, console=console, stop=self._stop),
            self._loop.loop)

    def raise_if_ended(self) -> None:
        if self._future.done():
            self._future.result()  # raises what ended it
            raise RuntimeError("serve() returned before it was asked to stop")

    def wait_console(self, timeout: float = 10.0) -> None:
        def up() -> bool:
            self.raise_if_ended()
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False
        block_until(up, timeout, what=f"the console answers on {self.base}")

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.base + path, timeout=5) as response:
            return response.read()

    def get_json(self, path: str) -> Any:
        return json.loads(self.get(path))

    def stop(self, timeout: float = 20.0) -> None:
        try:
            self._loop.loop.call_soon_threadsafe(self._stop.set)
            self._future.result(timeout)
        finally:
            self._loop.close()


def ami_logged_in(bench: AsteriskBench) -> bool:
    """Asterisk lists a manager session of our user: the listener is logged in and receives events."""
    out = bench.cli("manager show connected")
    return any(line.split()[:1] == [bench.ami_user] for line in out.splitlines())


def lifecell_entry(code: str, phrase: str) -> Entry:
    """The shipped lifecell entry a carrier answering `code phrase` must be explained by."""
    matches = [e for e in load_catalogs()["lifecell"].entries if e.code == code and e.phrase == phrase]
    assert len(matches) == 1, (code, phrase, matches)
    return matches[0]


@dataclass(frozen=True, slots=True)
class PlacedCall:
    """One real call through Asterisk: what the carrier answered and the ids Asterisk gave it."""

    code: str
    phrase: str
    linkedid: str
    dstchannel: str
    disposition: str
    returned_at: float  # when place_call came back (after the CDR was written)

    @property
    def failed(self) -> bool:
        return self.disposition != "ANSWERED"


def place(bench: AsteriskBench, code: int | str, phrase: str = "") -> PlacedCall:
    rows = bench.place_call(code, phrase, "lifecell")
    assert len(rows) == 1, rows
    row = rows[0]
    return PlacedCall(str(code), phrase, str(row["linkedid"]), str(row["dstchannel"]), str(row["disposition"]),
                      time.time())


def store_rows(db: Path) -> list[dict[str, Any]]:
    """The hangups table as another program reading the SQLite file would see it: a row's reason texts are kept
    once per answer in ``reason_texts`` and joined back here."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        con.row_factory = sqlite3.Row
        rows = [dict(r) for r in con.execute(
            "SELECT h.*, t.uk AS ref_uk, t.ru AS ref_ru, t.en AS ref_en FROM hangups h "
            "LEFT JOIN reason_texts t ON t.texts_id = h.texts_id ORDER BY h.id")]
    finally:
        con.close()
    for row in rows:
        for lang in ("uk", "ru", "en"):
            reference = row.pop(f"ref_{lang}")
            row[f"text_{lang}"] = row.get(f"text_{lang}") or reference
    return rows


@dataclass(frozen=True, slots=True)
class Latency:
    """From the hangup (Asterisk's AMI event time) to the row appearing on the page, per call."""

    linkedid: str
    code: str
    hangup_at: float
    row_at: float

    @property
    def seconds(self) -> float:
        return self.row_at - self.hangup_at


def latency_report(samples: list[Latency]) -> str:
    values = [s.seconds for s in samples]
    lines = ["# feed latency: AMI Hangup event Timestamp -> the call's row inserted into the page's live feed",
             "# (Chromium in the same machine; both clocks are the system clock)",
             f"calls {len(values)}",
             f"min_ms {min(values) * 1000:.1f}",
             f"median_ms {statistics.median(values) * 1000:.1f}",
             f"max_ms {max(values) * 1000:.1f}",
             "", "# linkedid code latency_ms"]
    lines += [f"{s.linkedid} {s.code} {s.seconds * 1000:.1f}" for s in samples]
    return "\n".join(lines) + "\n"


__all__ = ["FEED_WATCH_JS", "Latency", "PlacedCall", "ServeInBackground", "ami_logged_in", "free_tcp_port",
           "latency_report", "lifecell_entry", "place", "resolver_for", "store_rows", "write_config"]
