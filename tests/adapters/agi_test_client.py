"""A scripted res_agi on 127.0.0.1: the Asterisk side of a FastAGI session, for tests of our FastAGI server.

Shared by the FastAGI server tests and the AMI listener tests (``run_asterisk`` serves FastAGI too): the request
headers Asterisk sends, then a fixed answer to every command, so a test sees exactly what the server asked.
"""
from __future__ import annotations

import asyncio
from collections.abc import Mapping

from pbx_codes.protocols.agi import unquote_args


def agi_request(script: str, *args: str, channel: str, uniqueid: str, **fields: str) -> bytes:
    """The ``agi_*`` header block res_agi opens a FastAGI session with; `fields` are further ``agi_<name>`` lines."""
    lines = ["agi_network: yes", f"agi_network_script: {script}", f"agi_request: agi://127.0.0.1/{script}",
             f"agi_channel: {channel}", f"agi_uniqueid: {uniqueid}"]
    lines += [f"agi_{name}: {value}" for name, value in fields.items()]
    lines += [f"agi_arg_{i}: {a}" for i, a in enumerate(args, 1)]
    return ("\n".join(lines) + "\n\n").encode()


async def play_res_agi(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes,
                       variables: Mapping[str, bytes]) -> list[bytes]:
    """Plays res_agi on an open connection until the server closes it; returns the raw command lines received.

    ``GET FULL VARIABLE <expression>`` is answered from `variables` (raw bytes, so a test can send what is not
    UTF-8) or ``200 result=0`` when absent, ``SET VARIABLE`` with ``200 result=1``, anything else with 510.
    """
    writer.write(request)
    received: list[bytes] = []
    try:
        while line := await reader.readline():
            received.append(line)
            words = unquote_args(line.decode("utf-8").rstrip("\n"))
            if words[:3] == ["GET", "FULL", "VARIABLE"] and len(words) == 4:
                value = variables.get(words[3])
                writer.write(b"200 result=0\n" if value is None else b"200 result=1 (" + value + b")\n")
            elif words[:2] == ["SET", "VARIABLE"]:
                writer.write(b"200 result=1\n")
            else:
                writer.write(b"510 Invalid or unknown command\n")
            await writer.drain()
    finally:
        writer.close()
    return received
