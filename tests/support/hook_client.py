"""A client for the FreeSWITCH hook endpoint on 127.0.0.1: one form POST, as the hangup hook sends it."""
from __future__ import annotations

import asyncio


async def post_hook(port: int, body: bytes, path: str = "/annotate") -> tuple[int, bytes]:
    """POST `body` (a URL-encoded form) to `path`; returns the status code and the response body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), payload
