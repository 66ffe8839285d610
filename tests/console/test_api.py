"""The console's HTTP API: what each endpoint answers, the event stream, masking and the access token rules."""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from console.support import HOSTILE, FakeAlerts, FakeMetrics, hangup
from pbx_codes.console import ConsoleSettings, create_app
from pbx_codes.console.auth import COOKIE
from pbx_codes.console.events import mask_number
from pbx_codes.console.feed import CLIENT_QUEUE
from pbx_codes.resolve import Resolver
from pbx_codes.sinks.bus import AnnotationBus

TOKEN = "correct horse battery staple"


async def _client(bus: AnnotationBus, settings: ConsoleSettings, **parts) -> TestClient:
    client = TestClient(TestServer(create_app(bus, parts.get("store"), parts.get("metrics"), parts.get("alerts"),
                                              settings)))
    await client.start_server()
    return client


@pytest_asyncio.fixture
async def bus() -> AnnotationBus:
    return AnnotationBus()


@pytest_asyncio.fixture
async def alerts() -> FakeAlerts:
    return FakeAlerts()


@pytest_asyncio.fixture
async def client(bus: AnnotationBus, alerts: FakeAlerts) -> AsyncIterator[TestClient]:
    c = await _client(bus, ConsoleSettings(), metrics=FakeMetrics(), alerts=alerts)
    yield c
    await c.close()


@pytest_asyncio.fixture
async def token_client(bus: AnnotationBus) -> AsyncIterator[TestClient]:
    c = await _client(bus, ConsoleSettings(host="0.0.0.0", token=TOKEN))
    yield c
    await c.close()


async def _next_event(response) -> tuple[str, dict]:
    """Read the stream until one whole event: skips comments (connected, keep-alive)."""
    name, data = "", ""
    while True:
        line = (await response.content.readline()).decode("utf-8")
        assert line, "the event stream ended"
        line = line.rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and data:
            return name, json.loads(data)


async def _open_stream(client: TestClient, **kwargs):
    response = await client.get("/events", **kwargs)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert await response.content.readline() == b": connected\n"  # subscribed: what is published now arrives
    return response


# ---- masking -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, masked", [("+380441234567", "+********4567"), ("0441234567", "******4567"),
                                         ("101", "101"), ("1234", "1234"), ("", ""), (None, None),
                                         ("+38 044 123-45-67", "+** *** ***-45-67")])
def test_number_keeps_only_its_last_four_digits(raw, masked) -> None:
    assert mask_number(raw) == masked


# ---- event stream ------------------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_published_hangup_arrives_on_the_event_stream(client: TestClient, bus: AnnotationBus,
                                                            resolver: Resolver) -> None:
    stream = await _open_stream(client)
    bus.publish(hangup(resolver, leg_id="1700000000.2"))  # named: leg ids made up elsewhere depend on test order
    name, event = await _next_event(stream)
    stream.close()
    assert name == "hangup"
    assert (event["trunk"], event["code"], event["phrase"], event["category"]) == (
        "lifecell-trunk", "503", "Simultaneous calls limit reached", "capacity")
    assert event["texts"]["uk"] == "перевищено ліміт одночасних викликів."
    assert set(event["texts"]) == {"uk", "ru", "en"} and all(event["texts"].values())
    assert (event["pbx"], event["linkedid"], event["uniqueid"]) == ("asterisk", "1700000000.1", "1700000000.2")
    assert isinstance(event["time"], float)


@pytest.mark.asyncio
async def test_stream_masks_the_number_by_default(client: TestClient, bus: AnnotationBus,
                                                  resolver: Resolver) -> None:
    stream = await _open_stream(client)
    bus.publish(hangup(resolver, number="+380441234567"))
    _, event = await _next_event(stream)
    stream.close()
    assert event["number"] == "+********4567"


@pytest.mark.asyncio
async def test_numbers_are_shown_whole_only_when_configured(bus: AnnotationBus, resolver: Resolver) -> None:
    client = await _client(bus, ConsoleSettings(show_numbers=True))
    try:
        stream = await _open_stream(client)
        bus.publish(hangup(resolver, number="+380441234567"))
        _, event = await _next_event(stream)
        stream.close()
        recent = await (await client.get("/api/recent")).json()
    finally:
        await client.close()
    assert event["number"] == "+380441234567" and recent["items"][0]["number"] == "+380441234567"


@pytest.mark.asyncio
async def test_fired_and_cleared_alerts_arrive_on_the_stream(client: TestClient, alerts: FakeAlerts) -> None:
    stream = await _open_stream(client)
    alerts.emit(state="fired", name="lifecell capacity", message="503 rate 40% over 5 min", time=1.0)
    alerts.emit(state="cleared", name="lifecell capacity", message="back under 10%", time=2.0)
    first, second = await _next_event(stream), await _next_event(stream)
    stream.close()
    assert [first[0], second[0]] == ["alert", "alert"]
    assert [first[1]["state"], second[1]["state"]] == ["fired", "cleared"]
    kept = await (await client.get("/api/alerts")).json()
    assert [a["state"] for a in kept["items"]] == ["fired", "cleared"]


@pytest.mark.asyncio
async def test_hostile_phrase_travels_as_data_not_markup(client: TestClient, bus: AnnotationBus,
                                                         resolver: Resolver) -> None:
    stream = await _open_stream(client)
    bus.publish(hangup(resolver, sip="599", phrase=HOSTILE + "\r\nevent: alert"))
    name, event = await _next_event(stream)
    stream.close()
    assert name == "hangup" and event["phrase"] == HOSTILE + "\r\nevent: alert"  # one event, phrase intact


# ---- JSON API ----------------------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_recent_filters_by_trunk_category_code_and_search(client: TestClient, bus: AnnotationBus,
                                                                resolver: Resolver) -> None:
    stream = await _open_stream(client)
    bus.publish(hangup(resolver, call_id="c1", leg_id="l1"))
    bus.publish(hangup(resolver, sip="486", phrase="Busy Here", trunk="gw-other", call_id="c2", leg_id="l2",
                       number="+380509998877", pbx="freeswitch"))
    await _next_event(stream), await _next_event(stream)  # both went through the console's subscription
    stream.close()

    async def ids(query: str) -> list[str]:
        body = await (await client.get("/api/recent" + query)).json()
        return [e["uniqueid"] for e in body["items"]]

    assert await ids("") == ["l2", "l1"]
    assert await ids("?trunk=gw-other") == ["l2"]
    assert await ids("?category=capacity") == ["l1"]
    assert await ids("?code=486") == ["l2"]
    assert await ids("?pbx=asterisk") == ["l1"]
    assert await ids("?search=c2") == ["l2"]
    assert await ids("?limit=1") == ["l2"]
    assert (await client.get("/api/recent?limit=x")).status == 400


@pytest.mark.asyncio
async def test_call_detail_lists_every_leg(client: TestClient, bus: AnnotationBus, resolver: Resolver) -> None:
    stream = await _open_stream(client)
    bus.publish(hangup(resolver, call_id="call-7", leg_id="a", timestamp=100.0))
    bus.publish(hangup(resolver, sip="486", phrase=None, call_id="call-7", leg_id="b", timestamp=101.0))
    await _next_event(stream), await _next_event(stream)
    stream.close()
    body = await (await client.get("/api/call/call-7")).json()
    assert [leg["uniqueid"] for leg in body["legs"]] == ["a", "b"]
    assert all(leg["number"] == "+********4567" for leg in body["legs"])
    assert (await client.get("/api/call/nope")).status == 404


@pytest.mark.asyncio
async def test_stats_count_per_trunk_and_category_over_three_windows(client: TestClient, bus: AnnotationBus,
                                                                     resolver: Resolver) -> None:
    import time
    now = time.time()
    stream = await _open_stream(client)
    bus.publish(hangup(resolver, timestamp=now - 10))          # in 1, 5 and 15 minutes
    bus.publish(hangup(resolver, timestamp=now - 200))         # in 5 and 15
    bus.publish(hangup(resolver, sip="486", phrase=None, trunk="gw-b", timestamp=now - 600))  # in 15 only
    for _ in range(3):
        await _next_event(stream)
    stream.close()
    stats = await (await client.get("/api/stats")).json()
    assert stats["windows"] == [1, 5, 15]
    assert stats["by_trunk"] == {"lifecell-trunk": [1, 2, 2], "gw-b": [0, 0, 1]}
    assert stats["by_category"] == {"capacity": [1, 2, 2], "busy": [0, 0, 1]}
    assert len(stats["failure_rate"]) == 15 and sum(p["failed"] for p in stats["failure_rate"]) == 3


@pytest.mark.asyncio
async def test_unknown_codes_are_listed_and_exported_as_toml(client: TestClient, bus: AnnotationBus,
                                                             resolver: Resolver) -> None:
    import tomllib
    stream = await _open_stream(client)
    bus.publish(hangup(resolver, sip="599", phrase='Carrier "odd"\nreason'))
    bus.publish(hangup(resolver, sip="599", phrase='Carrier "odd"\nreason'))
    bus.publish(hangup(resolver))  # known exactly: not listed
    for _ in range(3):
        await _next_event(stream)
    stream.close()
    unknown = (await (await client.get("/api/unknown")).json())["items"]
    assert [(u["trunk"], u["code"], u["count"]) for u in unknown] == [("lifecell-trunk", "599", 2)]
    response = await client.get("/api/unknown/export?trunk=lifecell-trunk")
    assert response.headers["Content-Disposition"] == 'attachment; filename="lifecell-trunk.toml"'
    catalog = tomllib.loads(await response.text())
    assert catalog["id"] == "lifecell-trunk"
    assert [(e["code"], e["phrase"]) for e in catalog["entry"]] == [("599", 'Carrier "odd"\nreason')]


@pytest.mark.asyncio
async def test_metrics_serves_the_metrics_render(client: TestClient) -> None:
    response = await client.get("/metrics")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert await response.read() == FakeMetrics().body


@pytest.mark.asyncio
async def test_healthz_and_page_answer(client: TestClient) -> None:
    assert (await (await client.get("/healthz")).json())["status"] == "ok"
    page = await client.get("/")
    assert page.status == 200 and "pbx-codes console" in await page.text()
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert (await client.get("/static/console.js")).status == 200


@pytest.mark.asyncio
async def test_store_queries_pass_through_the_store(bus: AnnotationBus) -> None:
    """With a store configured the API asks it (async methods awaited), not the in-memory view."""

    class Store:
        def __init__(self) -> None:
            self.asked: dict = {}

        async def recent(self, **filters):
            self.asked = filters
            return [{"trunk": "t", "number": "0501234567", "code": "486", "texts": {"en": "busy"},
                     "category": "busy", "timestamp": 5.0}]

        async def export_unknown(self, trunk=None):
            return f'id = "{trunk}"\n'

    store = Store()
    client = await _client(bus, ConsoleSettings(), store=store)
    try:
        body = await (await client.get("/api/recent?trunk=t&search=0501&limit=5")).json()
        exported = await (await client.get("/api/unknown/export?trunk=t")).text()
    finally:
        await client.close()
    assert store.asked == {"limit": 5, "trunk": "t", "search": "0501"}
    assert body["items"][0]["number"] == "******4567" and body["items"][0]["texts"]["uk"] == "busy"
    assert exported == 'id = "t"\n'


# ---- access ------------------------------------------------------------------------------------------------

@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/", "/events", "/api/recent", "/api/stats", "/api/unknown", "/metrics",
                                  "/healthz", "/api/call/x", "/static/console.js"])
async def test_every_path_needs_the_token_off_loopback(token_client: TestClient, path: str) -> None:
    assert (await token_client.get(path)).status == 401
    assert (await token_client.get(path, headers={"Authorization": "Bearer wrong"})).status == 401


@pytest.mark.asyncio
async def test_bearer_header_opens_the_api_and_the_stream(token_client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert (await token_client.get("/api/stats", headers=headers)).status == 200
    stream = await _open_stream(token_client, headers=headers)
    stream.close()


@pytest.mark.asyncio
async def test_query_token_sets_a_cookie_and_redirects_without_it(token_client: TestClient) -> None:
    response = await token_client.get("/?token=" + TOKEN.replace(" ", "%20") + "&x=1", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/?x=1"
    cookie = response.cookies[COOKIE]
    assert cookie.value == TOKEN and cookie["httponly"] and cookie["samesite"] == "Strict"
    # the client's cookie jar now carries it: the page and the event stream open
    assert (await token_client.get("/")).status == 200
    stream = await _open_stream(token_client)
    stream.close()


@pytest.mark.asyncio
async def test_wrong_query_token_sets_no_cookie(token_client: TestClient) -> None:
    response = await token_client.get("/?token=nope", allow_redirects=False)
    assert response.status == 401 and COOKIE not in response.cookies
    assert (await token_client.get("/api/stats")).status == 401


@pytest.mark.asyncio
async def test_loopback_console_refuses_foreign_host_names(client: TestClient) -> None:
    """A DNS name rebound to 127.0.0.1 must not let another site's page read the feed."""
    assert (await client.get("/api/recent", headers={"Host": "evil.example:8088"})).status == 403
    assert (await client.get("/api/recent", headers={"Host": "localhost:8088"})).status == 200
    assert (await client.get("/api/recent", headers={"Host": "[::1]:8088"})).status == 200


async def _hangups(stream, expected: int) -> tuple[list[str], int]:
    """Read `hangup`/`hangups` messages until `expected` hangups came: their leg ids in order, and the messages."""
    legs: list[str] = []
    messages = 0
    while len(legs) < expected:
        name, data = await _next_event(stream)
        messages += 1
        legs.extend([data["uniqueid"]] if name == "hangup" else [item["uniqueid"] for item in data])
    return legs, messages


@pytest.mark.asyncio
@pytest.mark.parametrize("query", ["", "?batch=1"])
async def test_a_burst_larger_than_a_client_queue_arrives_whole_and_in_order(client: TestClient, bus: AnnotationBus,
                                                                             resolver: Resolver, query: str) -> None:
    stream = await _open_stream(client, params={"batch": "1"} if query else None)
    base = hangup(resolver, leg_id="burst")
    burst = CLIENT_QUEUE // 2  # a second of a fleet's rows at 5,000/s, published at once by the central console
    for i in range(burst):
        bus.publish(replace(base, observation=replace(base.observation, leg_id=f"burst-{i}")))
    legs, messages = await asyncio.wait_for(_hangups(stream, burst), 60)  # a deadline: dropped events never come
    assert legs == [f"burst-{i}" for i in range(burst)]
    if query:  # one message carries many hangups: the page handles a burst in a few messages, not thousands
        assert messages < burst / 10


@pytest.mark.asyncio
async def test_the_first_hangup_after_a_quiet_spell_goes_at_once_and_the_next_ones_wait_the_write_gap_together(
        client: TestClient, bus: AnnotationBus, resolver: Resolver, monkeypatch: pytest.MonkeyPatch) -> None:
    import pbx_codes.console.app as console_app
    from support.waiting import wait_until

    monkeypatch.setattr(console_app, "WRITE_GAP", 3600.0)  # were the first held by the gap, it would come in an hour
    stream = await _open_stream(client, params={"batch": "1"})
    (feed,) = client.server.app[console_app.HUB].clients
    base = hangup(resolver, leg_id="gap")

    def publish(leg: str) -> None:
        bus.publish(replace(base, observation=replace(base.observation, leg_id=leg)))

    publish("first")
    assert await asyncio.wait_for(_hangups(stream, 1), 20) == (["first"], 1)
    monkeypatch.setattr(console_app, "WRITE_GAP", 3.0)
    publish("a")
    await wait_until(feed.queue.empty, what="the stream took the hangup and waits out the gap")
    for leg in "bcde":  # published while the stream waits: they go with "a", in one message
        publish(leg)
    assert await asyncio.wait_for(_hangups(stream, 5), 20) == (list("abcde"), 1)
