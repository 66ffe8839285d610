"""The console shows each part's state, and keeps answering while the store's database is away."""
from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from pbx_codes.console import ConsoleSettings, create_app
from pbx_codes.sinks.bus import AnnotationBus
from pbx_codes.status import Health, PartStatus


class DownStore:
    """A store whose database does not answer: every query raises, as psycopg does when the server is gone."""

    def __getattr__(self, name: str):
        async def query(*args, **kwargs):
            raise ConnectionRefusedError("connection to server at 127.0.0.1 failed")
        return query


async def client_for(**parts) -> TestClient:
    client = TestClient(TestServer(create_app(AnnotationBus(), parts.get("store"), None, None, ConsoleSettings(),
                                              parts.get("health"))))
    await client.start_server()
    return client


@pytest.mark.asyncio
async def test_api_health_lists_each_parts_state_and_reason() -> None:
    health = Health()
    ami = PartStatus("AMI 127.0.0.1:5038")
    ami.set("refused", "AMI login as 'pbx-codes' refused: Authentication failed")
    health.add(ami)
    health.add(lambda: PartStatus("store sqlite", state="up"))
    client = await client_for(health=health)
    try:
        response = await client.get("/api/health")
        assert response.status == 200
        parts = (await response.json())["parts"]
    finally:
        await client.close()
    assert [(p["part"], p["state"], p["up"]) for p in parts] == [("AMI 127.0.0.1:5038", "refused", False),
                                                                  ("store sqlite", "up", True)]
    assert "Authentication failed" in parts[0]["reason"]


@pytest.mark.asyncio
async def test_with_the_database_away_the_api_says_503_and_the_rest_keeps_answering() -> None:
    client = await client_for(store=DownStore(), health=Health())
    try:
        recent = await client.get("/api/recent")
        assert recent.status == 503 and await recent.json() == {"error": "store unavailable"}
        assert (await client.get("/api/stats")).status == 503
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/api/health")).status == 200
        assert (await client.get("/")).status == 200
    finally:
        await client.close()
