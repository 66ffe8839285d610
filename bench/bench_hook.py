"""FreeSWITCH hook endpoint throughput: POST /annotate as the hangup hook sends it (one request per connection).

The server (this process) answers with the real resolver; a client in a second process keeps `--concurrency`
requests in flight, each on its own connection, as pbx_codes_hook.lua does. Two servers run interleaved (best of
`--rounds` each), so a shared machine's load hits both alike: the endpoint as shipped (aiohttp) and, as the
baseline, the hand-written asyncio server it replaced (kept here only for this comparison). Prints requests/s on
the wall clock, the server's CPU per request, latency percentiles and the ratio.

    python3 bench/bench_hook.py [--requests 5000] [--concurrency 32] [--rounds 3]
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pbx_codes.writeback.freeswitch_hook import HookServer

FORM = urlencode({"uuid": "b-leg", "call_uuid": "a-leg", "direction": "outbound", "sip_gateway_name": "gw409",
                  "sip_invite_failure_status": "409", "sip_invite_failure_phrase": "Not enough money",
                  "sip_hangup_disposition": "recv_refuse", "hangup_cause": "NORMAL_UNSPECIFIED"}).encode()


async def _client(port: int, requests: int, concurrency: int) -> tuple[float, list[float]]:
    head = (f"POST /annotate HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded"
            f"\r\nContent-Length: {len(FORM)}\r\nConnection: close\r\n\r\n").encode()
    latencies: list[float] = []
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            start = time.perf_counter()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head + FORM)
            raw = await reader.read()
            writer.close()
            if not raw.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"unexpected answer: {raw[:80]!r}")
            latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - began, latencies


def _client_process(port: int, requests: int, concurrency: int, conn) -> None:
    conn.send(asyncio.run(_client(port, requests, concurrency)))


def _resolver():
    from pbx_codes.catalog import load_catalogs
    from pbx_codes.resolve import Resolver
    return Resolver(load_catalogs(), bindings={}, default_catalog="sip")


class HandWritten(HookServer):
    """The endpoint's HTTP as it was before aiohttp: asyncio streams, one request per connection."""

    async def start(self) -> int:
        self._plain = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._plain.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        self._plain.close()
        await self._plain.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2.0)
            lines = head.decode("latin-1").split("\r\n")
            method, _, _rest = lines[0].partition(" ")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
            status, payload = self.answer(body) if method == "POST" else (404, b"")
        except (TimeoutError, asyncio.IncompleteReadError, ValueError, ConnectionError):
            status, payload = 400, b""
        reason = {200: "OK", 204: "No Content"}.get(status, "Error")
        writer.write((f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                      f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n").encode() + payload)
        try:
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


async def measure(server: HookServer, requests: int, concurrency: int) -> tuple[float, float, list[float]]:
    """(requests/s, server CPU us/request, sorted latencies) of one run."""
    port = await server.start()
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=_client_process, args=(port, requests, concurrency, child))
    proc.start()
    cpu_start = time.process_time()
    elapsed, latencies = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
    server_cpu = time.process_time() - cpu_start
    proc.join()
    await server.close()
    return len(latencies) / elapsed, server_cpu * 1e6 / len(latencies), sorted(latencies)


async def main_async(requests: int, concurrency: int, rounds: int) -> None:
    resolve = _resolver().resolve
    best: dict[str, tuple[float, float, list[float]]] = {}
    for _ in range(rounds):
        for name, cls in (("hand-written", HandWritten), ("aiohttp", HookServer)):
            result = await measure(cls(resolve, port=0), requests, concurrency)
            if name not in best or result[0] > best[name][0]:
                best[name] = result
    print(f"hook endpoint: {requests} POST /annotate per run, one connection each, concurrency {concurrency}, "
          f"best of {rounds} interleaved ({multiprocessing.cpu_count()} CPUs, client in a second process)")
    for name, (rate, cpu, lat) in best.items():
        def p(q: float, lat: list[float] = lat) -> float:
            return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000

        print(f"  {name:>12}: {rate:7,.0f} requests/s | server CPU {cpu:4.0f} us/request | latency ms p50 "
              f"{p(0.5):.2f} p99 {p(0.99):.2f}")
    print(f"  aiohttp / hand-written: {best['aiohttp'][0] / best['hand-written'][0]:.2f}x requests/s, "
          f"{best['aiohttp'][1] / best['hand-written'][1]:.2f}x CPU per request")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    asyncio.run(main_async(args.requests, args.concurrency, args.rounds))


if __name__ == "__main__":
    main()
