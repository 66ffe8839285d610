"""Alerts fire when a cause's share or count crosses its threshold, clear only below the lower one after the hold
time, fire once for a sustained condition, and reach the callbacks and a webhook as JSON."""
from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest

from pbx_codes.adapters.reconnect import BackoffPolicy
from pbx_codes.model import Annotation, Observation, Side
from pbx_codes.resolve import Resolver
from pbx_codes.sinks.alerts import AlertConfigError, AlertEngine, AlertEvent, parse_rule, parse_rules, run_alerts
from pbx_codes.sinks.bus import AnnotationBus

LIFECELL = "lifecell-trunk"
CAPACITY_RULE = {"trunk": LIFECELL, "category": "capacity", "above": 0.2, "window": 300, "min_calls": 5,
                 "hold": 30}


def call(resolver: Resolver, sip: str, trunk: str = LIFECELL) -> Annotation:
    return resolver.resolve(Observation(sip_code=sip, trunk=trunk, pbx="asterisk", hangup_by=Side.CARRIER))


FAST_RETRY = BackoffPolicy(initial=0.01, maximum=0.05)


def engine_for(*tables: dict[str, Any], **options: Any) -> tuple[AlertEngine, list[AlertEvent]]:
    engine = AlertEngine(parse_rules(tables), **options)
    events: list[AlertEvent] = []
    engine.add_listener(events.append)
    return engine, events


def test_fires_when_the_503_capacity_share_goes_over_the_threshold(resolver: Resolver) -> None:
    engine, events = engine_for(CAPACITY_RULE)
    assert call(resolver, "503").category.value == "capacity"
    t = 1000.0
    for i in range(4):  # all capacity, but fewer than min_calls
        engine.observe(call(resolver, "503"), now=t + i)
    assert events == []
    engine.observe(call(resolver, "200"), now=t + 4)  # 4 of 5 = 80 %
    assert [(e.state, e.trunk, e.calls, e.hits) for e in events] == [("fired", LIFECELL, 5, 4)]
    assert "80% of 5 calls were capacity" in events[0].message


def test_share_just_above_fires_and_exactly_at_the_threshold_does_not(resolver: Resolver) -> None:
    engine, events = engine_for(CAPACITY_RULE)
    for i in range(8):
        engine.observe(call(resolver, "200"), now=float(i))
    engine.observe(call(resolver, "503"), now=8.0)
    engine.observe(call(resolver, "503"), now=9.0)  # 2 of 10 = 20 %: not above
    assert events == []
    engine.observe(call(resolver, "503"), now=10.0)  # 3 of 11 = 27 %
    assert [e.state for e in events] == ["fired"]


def test_clears_only_below_the_lower_threshold_and_after_the_hold_time(resolver: Resolver) -> None:
    engine, events = engine_for(CAPACITY_RULE)
    for i in range(3):
        engine.observe(call(resolver, "503"), now=float(i))
    for i in range(7):
        engine.observe(call(resolver, "200"), now=3.0 + i)  # fired at 5 calls; now 3 of 10 = 30 %
    assert [e.state for e in events] == ["fired"]
    for i in range(7):
        engine.observe(call(resolver, "200"), now=40.0 + i)  # 3 of 17 = 17.6 %: under 20 %, above 16 %
    assert [e.state for e in events] == ["fired"]
    engine.observe(call(resolver, "200"), now=50.0)
    engine.observe(call(resolver, "200"), now=51.0)  # 3 of 19 = 15.8 %: below 0.8 x 20 %, hold is over
    assert [e.state for e in events] == ["fired", "cleared"]
    assert events[1].value < 0.16


def test_hold_time_keeps_a_fired_alert_until_the_timer_sees_it_is_over(resolver: Resolver) -> None:
    engine, events = engine_for({**CAPACITY_RULE, "hold": 120})
    for i in range(5):
        engine.observe(call(resolver, "503"), now=float(i))
    assert [e.state for e in events] == ["fired"]
    for i in range(30):
        engine.observe(call(resolver, "200"), now=10.0 + i)  # 5 of 35: below, but still within the hold
    assert [e.state for e in events] == ["fired"]
    assert engine.evaluate(now=100.0) == []
    assert [e.state for e in engine.evaluate(now=124.0)] == ["cleared"]


def hovering(engine: AlertEngine, resolver: Resolver) -> None:
    """An hour of traffic whose capacity share swings between 17 % and 25 %, across the 20 % threshold."""
    cap, ok, t = call(resolver, "503"), call(resolver, "200"), 0.0
    for i in range(2000):
        t += 2.0
        every = 4 if (i // 100) % 2 == 0 else 6
        engine.observe(cap if i % every == 0 else ok, now=t)
        if i % 5 == 0:
            engine.evaluate(now=t)


def test_a_sustained_condition_fires_once_not_a_storm(resolver: Resolver) -> None:
    engine, events = engine_for(CAPACITY_RULE)
    hovering(engine, resolver)
    assert [e.state for e in events] == ["fired"]
    assert len(engine.active()) == 1


def test_without_hysteresis_the_same_traffic_would_storm(resolver: Resolver) -> None:
    """The control for the test above: its traffic does cross the threshold again and again."""
    engine, events = engine_for({**CAPACITY_RULE, "clear_below": 0.2, "hold": 0})
    hovering(engine, resolver)
    assert [e.state for e in events].count("fired") > 3


def test_a_count_rule_on_every_trunk_fires_per_trunk_and_clears_when_the_window_passes(resolver: Resolver) -> None:
    engine, events = engine_for({"trunk": "*", "category": "billing", "count_at_least": 1, "window": 60, "hold": 0})
    assert call(resolver, "402", trunk="a").category.value == "billing"
    engine.observe(call(resolver, "486", trunk="a"), now=0.0)
    engine.observe(call(resolver, "402", trunk="a"), now=1.0)
    engine.observe(call(resolver, "402", trunk="b"), now=2.0)
    engine.observe(call(resolver, "402", trunk="b"), now=3.0)
    assert [(e.state, e.trunk) for e in events] == [("fired", "a"), ("fired", "b")]
    assert engine.evaluate(now=60.5) == []
    assert [(e.state, e.trunk) for e in engine.evaluate(now=61.5)] == [("cleared", "a")]
    assert [(e.state, e.trunk) for e in engine.evaluate(now=63.5)] == [("cleared", "b")]
    assert engine.evaluate(now=1000.0) == [] and engine.active() == []


class _Recorder(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.headers["Content-Type"], body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def webhook_server() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    handler = type("Recorder", (_Recorder,), {"received": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler.received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.asyncio
async def test_webhook_receives_the_fired_and_cleared_events_as_json(resolver: Resolver,
                                                                     webhook_server: tuple[str, list]) -> None:
    url, received = webhook_server
    engine, _ = engine_for({**CAPACITY_RULE, "name": "lifecell capacity", "hold": 0}, webhook=url)
    for i in range(5):
        engine.observe(call(resolver, "503"), now=float(i))
    engine.evaluate(now=400.0)
    await engine.notified()
    bodies = [json.loads(body) for _, body in received]
    assert [(b["state"], b["name"], b["trunk"], b["category"]) for b in bodies] == [
        ("fired", "lifecell capacity", LIFECELL, "capacity"), ("cleared", "lifecell capacity", LIFECELL, "capacity")]
    assert bodies[0]["value"] == 1.0 and bodies[0]["threshold"] == 0.2
    assert all(ctype.startswith("application/json") for ctype, _ in received)


@pytest.mark.asyncio
async def test_an_unreachable_webhook_is_counted_and_does_not_stop_the_alerts(resolver: Resolver) -> None:
    engine, events = engine_for({**CAPACITY_RULE, "webhook": "http://127.0.0.1:9/down"}, webhook_timeout=2,
                                webhook_attempts=3, webhook_backoff=FAST_RETRY)
    for i in range(5):
        engine.observe(call(resolver, "503"), now=float(i))
    await engine.notified()
    assert [e.state for e in events] == ["fired"] and engine.webhook_failures == 1
    assert engine.webhook_status.state == "down" and engine.webhook_status.failures == 3


@pytest.mark.asyncio
async def test_a_webhook_that_comes_back_gets_the_event_on_a_retry_and_each_change_is_logged_once(
        resolver: Resolver, caplog: pytest.LogCaptureFixture) -> None:
    import socket

    from support.waiting import wait_until

    with socket.socket() as probe:  # a port nothing listens on yet: the webhook is down
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = type("Recorder", (_Recorder,), {"received": []})
    engine, _events = engine_for({**CAPACITY_RULE, "webhook": f"http://127.0.0.1:{port}/hook"}, webhook_timeout=2,
                                webhook_attempts=1000, webhook_backoff=FAST_RETRY)
    with caplog.at_level(logging.INFO, logger="pbx_codes.alerts"):
        for i in range(5):
            engine.observe(call(resolver, "503"), now=float(i))
        await wait_until(lambda: engine.webhook_status.failures >= 3)
        server = HTTPServer(("127.0.0.1", port), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            await engine.notified()
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
    assert [json.loads(body)["state"] for _, body in handler.received] == ["fired"]
    assert engine.webhook_status.state == "up" and engine.webhook_failures == 0
    changes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("alert webhook:")]
    assert len(changes) == 2 and "down" in changes[0] and "up" in changes[1]


@pytest.mark.asyncio
async def test_run_alerts_consumes_the_bus_and_calls_sync_and_async_listeners(resolver: Resolver) -> None:
    bus = AnnotationBus()
    engine = await run_alerts([{"trunk": "*", "category": "billing", "count_at_least": 2, "window": 60}], bus)
    seen: list[str] = []
    got_async = asyncio.Event()

    async def async_listener(event: AlertEvent) -> None:
        got_async.set()

    engine.add_listener(lambda e: seen.append(f"{e.state}:{e.trunk}"))
    engine.add_listener(async_listener)
    try:
        bus.publish(call(resolver, "402", trunk="x"))
        bus.publish(call(resolver, "402", trunk="x"))
        await asyncio.wait_for(got_async.wait(), 10)
        assert seen == ["fired:x"]
    finally:
        await engine.close()
    assert bus.subscriptions == []


@pytest.mark.parametrize("table, problem", [
    ({"category": "capacity", "window": 60}, "exactly one"),
    ({"category": "capacity", "above": 0.2, "count_at_least": 1}, "exactly one"),
    ({"category": "capacity", "above": 1.5}, "share"),
    ({"category": "capacyty", "above": 0.2}, "capacyty"),
    ({"category": "capacity", "above": 0.2, "treshold": 1}, "treshold"),
    ({"category": "capacity", "above": 0.2, "webhook": "file:///etc/passwd"}, "http"),
    ({"category": "capacity", "above": 0.2, "clear_below": 0.3}, "clear_below"),
    ({"category": "billing", "count_at_least": 0}, "at least 1"),
])
def test_a_mistaken_rule_is_refused_with_the_reason(table: dict[str, Any], problem: str) -> None:
    with pytest.raises(AlertConfigError, match=problem):
        parse_rule(table)


def test_a_rule_with_an_instance_watches_that_agent_and_one_without_watches_the_fleet(resolver: Resolver) -> None:
    def from_agent(name: str, sip: str) -> Annotation:
        return resolver.resolve(Observation(sip_code=sip, trunk=LIFECELL, pbx="asterisk", hangup_by=Side.CARRIER,
                                            instance=name))

    rules = ({**CAPACITY_RULE, "name": "kyiv", "instance": "pbx-kyiv"}, {**CAPACITY_RULE, "name": "fleet"})
    engine, events = engine_for(*rules)
    t = 1000.0
    for i in range(5):  # lviv's trunk is full, kyiv's answers: the fleet is over 20 %, kyiv is not
        engine.observe(from_agent("pbx-lviv", "503"), now=t + i)
        engine.observe(from_agent("pbx-kyiv", "200"), now=t + i)
    assert [(e.state, e.name) for e in events] == [("fired", "fleet")]
    for i in range(5):
        engine.observe(from_agent("pbx-kyiv", "503"), now=t + 10 + i)
    assert [(e.state, e.name) for e in events] == [("fired", "fleet"), ("fired", "kyiv")]
    with pytest.raises(AlertConfigError, match="instance"):
        parse_rule({**CAPACITY_RULE, "instance": 3})
