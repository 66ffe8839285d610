"""Peak memory of the FastAGI server (or the FreeSWITCH hook endpoint) under a flood, and how fast real sessions are
answered meanwhile.

The server (this project's AgiServer with the annotate route, on uvloop as `serve` runs it) runs in its own process;
its peak RSS (VmHWM) is read from /proc before and after. A second process floods: `--connections` connections
each send up to 256 environment lines of 8 KB (2 MB) without ending the request and hold the connection open; a
connection the server cuts is opened again, until `--seconds` have passed. Meanwhile this process plays a real
Asterisk: an annotate session (request, GET FULL VARIABLE, SET VARIABLE ...) every 10 ms, timed from connect to
close. `--root` runs another checkout's code as the server (e.g. an older commit exported with `git archive`), so
the same flood measures before and after.

With ``--target hook`` the same is done to the hook endpoint: each flooding connection sends a request head with
``Content-Length: 65536`` and all but the last byte of the body, and holds; the real requests are hangup-hook POSTs.

    python3 bench/flood_agi.py [--target agi|hook] [--connections 150] [--seconds 10] [--root DIR]
"""
from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: 256 distinct environment lines just under the parser's 8 KB line limit (distinct: a repeated name is overwritten)
LINES = [f"agi_arg_{n}: ".encode() + b"x" * (8 * 1024 - 20) + b"\n" for n in range(1, 257)]
REQUEST = (b"agi_network: yes\nagi_network_script: annotate\nagi_request: agi://127.0.0.1/annotate\n"
           b"agi_channel: PJSIP/caller-00000008\nagi_uniqueid: 1795422919.16\nagi_arg_1: bleg=PJSIP/trunk-00000009\n\n")

HOOK_HEAD = b"POST /annotate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 65536\r\n\r\n"
HOOK_BODY = (b"sip_invite_failure_status=409&sip_invite_failure_phrase=Not%20enough%20money&sip_gateway_name=gw409"
             b"&uuid=b-leg&call_uuid=a-leg&direction=outbound&sip_hangup_disposition=recv_refuse")
HOOK_REQUEST = (b"POST /annotate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(HOOK_BODY) + HOOK_BODY)

SERVER = r"""
import asyncio, signal, sys
sys.path.insert(0, sys.argv[1])
from pbx_codes.catalog import load_catalogs
from pbx_codes.resolve import Resolver

async def main(port, target):
    resolver = Resolver(load_catalogs(), bindings={"gw409": "lifecell"})
    if target == "hook":
        from pbx_codes.writeback.freeswitch_hook import HookServer
        server = HookServer(resolver.resolve, port=port)
    else:
        from pbx_codes.adapters.agi_server import AgiServer
        from pbx_codes.writeback.agi_annotate import make_routes
        server = AgiServer(make_routes(resolver), host="127.0.0.1", port=port, timeout=10.0)
    await server.start()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    refusals = getattr(getattr(server, "stats", None), "refusals", {})
    print(" ".join(f"{k}={v}" for k, v in refusals.items()) or "no-limits", flush=True)

try:
    import uvloop
    uvloop.install()
except ImportError:
    pass
asyncio.run(main(int(sys.argv[2]), sys.argv[3]))
"""


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


async def flooder(port: int, deadline: float, counts: dict[str, int], target: str) -> None:
    chunks = LINES if target == "agi" else [HOOK_HEAD, b"x" * 65535]
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            counts["connect_failed"] += 1
            await asyncio.sleep(0.01)
            continue
        counts["connections"] += 1
        try:
            for chunk in chunks:
                writer.write(chunk)
                await writer.drain()
            counts["held"] += 1
            left = deadline - time.monotonic()
            if left > 0:
                try:
                    await asyncio.wait_for(reader.read(), left)  # hold until the server gives up on us
                except TimeoutError:
                    pass
        except OSError:
            counts["cut"] += 1
        finally:
            writer.close()


async def real_hook_request(port: int) -> float | None:
    start = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(HOOK_REQUEST)
        answer = await asyncio.wait_for(reader.read(), 15)
        writer.close()
    except (TimeoutError, OSError):
        return None
    return time.perf_counter() - start if b"pbx_category=billing" in answer else None


async def real_session(port: int) -> float | None:
    start = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUEST)
        while line := await asyncio.wait_for(reader.readline(), 15):
            if line.startswith(b"GET FULL VARIABLE"):
                writer.write(b"200 result=1 (SIP 409 Not enough money)\n")
            else:
                writer.write(b"200 result=1\n")
        writer.close()
    except (TimeoutError, OSError):
        return None
    return time.perf_counter() - start


async def flood(port: int, connections: int, seconds: float, target: str) -> dict[str, int]:
    deadline = time.monotonic() + seconds
    counts = {"connections": 0, "held": 0, "cut": 0, "connect_failed": 0}
    await asyncio.gather(*(flooder(port, deadline, counts, target) for _ in range(connections)),
                         return_exceptions=True)
    return counts


async def real_sessions(port: int, seconds: float, target: str) -> tuple[list[float], int]:
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    failed = 0
    while time.monotonic() < deadline:
        took = await (real_session(port) if target == "agi" else real_hook_request(port))
        if took is None:
            failed += 1
        else:
            latencies.append(took)
        await asyncio.sleep(0.01)
    return latencies, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", choices=("agi", "hook"), default="agi")
    parser.add_argument("--connections", type=int, default=150)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--root", default=str(ROOT), help="checkout whose pbx_codes serves (default: this one)")
    parser.add_argument("--flood-port", type=int, help=argparse.SUPPRESS)  # the flooding child process
    args = parser.parse_args()
    if args.flood_port:
        counts = asyncio.run(flood(args.flood_port, args.connections, args.seconds, args.target))
        print(" ".join(f"{k}={v}" for k, v in counts.items()))
        return 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-c", SERVER, args.root, str(port), args.target], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        base = rss_kib(server.pid, "VmRSS")
        flooding = subprocess.Popen([sys.executable, __file__, "--flood-port", str(port), "--target", args.target,
                                     "--connections", str(args.connections), "--seconds", str(args.seconds)],
                                    stdout=subprocess.PIPE, text=True)
        time.sleep(min(1.0, args.seconds / 4))  # the flood is on
        latencies, failed = asyncio.run(real_sessions(port, args.seconds - min(1.0, args.seconds / 4), args.target))
        out, _ = flooding.communicate(timeout=args.seconds + 30)
        counts = dict(item.split("=") for item in out.split())
        peak = rss_kib(server.pid, "VmHWM")
    finally:
        server.terminate()
        limits = server.communicate(timeout=10)[0].strip()
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[int(len(ms) * 0.99) - 1] if ms else float("nan")
    what = "256 lines of 8 KB" if args.target == "agi" else "a 64 KB body less one byte"
    print(f"server code: {args.root} ({'FastAGI' if args.target == 'agi' else 'hook endpoint'})")
    print(f"flood: {args.connections} connections x {what} for {args.seconds:g} s "
          f"({counts['connections']} connections opened, {counts['held']} sent it all, {counts['cut']} cut by "
          f"the server)")
    print(f"server RSS: {base / 1024:.0f} MiB at start, peak {peak / 1024:.0f} MiB under the flood")
    print(f"server's refusals: {limits}")
    real = "annotate sessions" if args.target == "agi" else "hook requests"
    print(f"real {real} meanwhile: {len(ms)} answered, {failed} failed; "
          f"p50 {statistics.median(ms) if ms else float('nan'):.1f} ms, p99 {p99:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
