"""The `?token=` login: it sets the cookie and sends the browser on, but only ever to a path of this console."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from pbx_codes.console import ConsoleSettings, create_app
from pbx_codes.sinks.bus import AnnotationBus

TOKEN = "s3cret-token"


@pytest_asyncio.fixture
async def token_client() -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(create_app(AnnotationBus(), None, None, None,
                                              ConsoleSettings(host="0.0.0.0", token=TOKEN))))
    await client.start_server()
    yield client
    await client.close()


async def _raw_get(client: TestClient, target: str) -> tuple[int, str]:
    """One GET with the request target sent exactly as given (an HTTP client library would normalise it)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: console.example:8088\r\nConnection: close\r\n\r\n".encode())
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    finally:
        writer.close()
    status = int(head[0].split()[1])
    headers = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
    return status, headers.get("Location", "")


def _stays_local(location: str) -> bool:
    """What a browser would do with the Location: resolved against the console's own address, same origin."""
    base = URL("http://console.example:8088/")
    # Browsers drop tab/CR/LF anywhere in a URL and read a backslash as a slash.
    cleaned = location.replace("\t", "").replace("\r", "").replace("\n", "").replace("\\", "/")
    target = base.join(URL(cleaned, encoded=True))
    return target.origin() == base.origin() and location.startswith("/") and not cleaned.startswith("//")


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["//evil.example/x", "///evil.example", "/\\evil.example/", "/%2F%2Fevil.example",
                                  "//evil.example/%2e%2e/", "/\\/evil.example", "/%5Cevil.example"])
async def test_query_token_login_redirects_only_to_a_local_path(token_client: TestClient, path: str) -> None:
    status, location = await _raw_get(token_client, f"{path}?token={TOKEN}&x=1")
    assert status == 303
    assert _stays_local(location), location
    assert "token" not in location and location.endswith("?x=1")


@pytest.mark.asyncio
async def test_query_token_login_keeps_an_ordinary_path_and_query(token_client: TestClient) -> None:
    response = await token_client.get(f"/api/stats?token={TOKEN}&window=5", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/api/stats?window=5"


@pytest.mark.asyncio
async def test_query_token_login_keeps_an_encoded_path_as_it_was_sent(token_client: TestClient) -> None:
    status, location = await _raw_get(token_client, f"/a%20b/%2Fc?token={TOKEN}")
    assert status == 303 and location == "/a%20b/%2Fc"
