"""How long after the PBX listens again the AMI and ESL listeners are connected, after an outage of `--outage` s.

The PBX is the protocol-faithful test server of each (tests/adapters/ami_test_server.py, esl_test_server.py) on
127.0.0.1: the client connects, the server stops (connections dropped, connects refused) for `--outage` seconds,
then listens again on the same port; the time from that moment to the client's next login is printed. `--root`
runs another checkout's clients (e.g. an older commit exported with `git archive`) against the same servers.

    python3 bench/reconnect_timing.py [--outage 45] [--root DIR]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


async def measure_ami(outage: float) -> float:
    from adapters.ami_test_server import AmiTestServer
    from pbx_codes.adapters.ami_client import AmiClient, AmiSettings

    server = await AmiTestServer(secret="s3cret").start()
    client = AmiClient(AmiSettings(port=server.port), "s3cret", lambda e: None)
    task = asyncio.ensure_future(client.run())
    try:
        await until(lambda: client.connections == 1)
        await server.stop()
        await asyncio.sleep(outage)
        await server.start()
        back = time.monotonic()
        await until(lambda: client.connections == 2)
        return time.monotonic() - back
    finally:
        await client.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.stop()


async def measure_esl(outage: float) -> float:
    from adapters.esl_test_server import PASSWORD, FakeFreeswitch
    from pbx_codes.adapters.esl_client import EslClient, EslClientConfig

    server = FakeFreeswitch(after_subscribe="silent")
    await server.start()
    client = EslClient(EslClientConfig(port=server.port, password=PASSWORD))
    task = asyncio.ensure_future(client.run())
    try:
        await until(lambda: client.connections == 1)
        for writer in getattr(server, "writers", []):
            writer.transport.abort()
        await server.close()
        await asyncio.sleep(outage)
        await server.start()
        back = time.monotonic()
        await until(lambda: client.connections == 2)
        return time.monotonic() - back
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.close()


async def until(predicate, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the client did not connect")
        await asyncio.sleep(0.005)


async def main_async(outage: float) -> tuple[float, float]:
    return tuple(await asyncio.gather(measure_ami(outage), measure_esl(outage)))  # type: ignore[return-value]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outage", type=float, default=45.0)
    parser.add_argument("--root", default=str(ROOT), help="checkout whose clients connect (default: this one)")
    args = parser.parse_args()
    sys.path[:0] = [args.root, str(ROOT / "tests")]  # the clients from --root, the test servers from this checkout
    os.chdir(ROOT)
    ami, esl = asyncio.run(main_async(args.outage))
    print(f"clients: {args.root}; outage {args.outage:g} s")
    print(f"connected again after the PBX listened: AMI {ami:.2f} s, ESL {esl:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
