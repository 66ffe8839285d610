"""/metrics text parses as Prometheus exposition and its counters equal the annotations fed through the bus."""
from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pbx_codes.model import Observation, Side
from pbx_codes.resolve import Resolver
from pbx_codes.sinks.bus import AnnotationBus
from pbx_codes.sinks.metrics import Metrics, run_metrics
from support.waiting import wait_until


def samples(body: bytes) -> dict[str, list]:
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(body.decode("utf-8")):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def annotate(resolver: Resolver, sip: str, trunk: str, pbx: str, phrase: str | None = None,
             timestamp: float | None = None):
    return resolver.resolve(Observation(sip_code=sip, phrase=phrase, trunk=trunk, pbx=pbx, hangup_by=Side.CARRIER,
                                        timestamp=timestamp))


@pytest.mark.asyncio
async def test_hangup_counters_match_the_annotations_fed(resolver: Resolver) -> None:
    bus = AnnotationBus()
    metrics = await run_metrics(bus)
    fed = [annotate(resolver, "503", "lifecell-trunk", "asterisk") for _ in range(5)]
    fed += [annotate(resolver, "486", "gw-mango", "freeswitch") for _ in range(3)]
    fed += [annotate(resolver, "799", 'evil"trunk\nx', "asterisk", phrase="who knows") for _ in range(2)]
    fed += [annotate(resolver, "499", "lifecell-trunk", "asterisk") for _ in range(4)]
    try:
        for ann in fed:
            bus.publish(ann)
        await wait_until(lambda: not bus.subscriptions[0].queue.qsize(), step=0, what="metrics took every annotation")
        got = samples(metrics.render())
    finally:
        await metrics.close()

    counted = {(s.labels["pbx"], s.labels["trunk"], s.labels["catalog"], s.labels["category"], s.labels["code"]):
               s.value for s in got["pbx_codes_hangups_total"]}
    want = Counter((a.observation.pbx, a.observation.trunk, a.catalog, a.category.value, a.code) for a in fed)
    assert counted == {k: float(v) for k, v in want.items()}
    unknown = {(s.labels["trunk"], s.labels["code"]): s.value for s in got["pbx_codes_unknown_codes_total"]}
    want_unknown = Counter((a.observation.trunk, a.code) for a in fed if a.match_kind in ("class", "none"))
    assert unknown == {k: float(v) for k, v in want_unknown.items()}
    assert unknown[('evil"trunk\nx', "799")] == 2.0 and unknown[("lifecell-trunk", "499")] == 4.0
    assert got["pbx_codes_bus_published_total"][0].value == len(fed)


def test_listener_state_reconnects_and_latency_are_exposed(resolver: Resolver) -> None:
    metrics = Metrics()
    metrics.listener_state("asterisk", True)
    metrics.listener_state("freeswitch", False)
    metrics.listener_reconnected("asterisk")
    metrics.listener_reconnected("asterisk")
    metrics.observe(annotate(resolver, "503", "t", "asterisk", timestamp=100.0), now=100.02)
    metrics.observe(annotate(resolver, "503", "t", "asterisk", timestamp=100.0), now=103.0)
    got = samples(metrics.render())
    assert {s.labels["pbx"]: s.value for s in got["pbx_codes_listener_connected"]} == {"asterisk": 1.0,
                                                                                        "freeswitch": 0.0}
    assert got["pbx_codes_listener_reconnects_total"][0].value == 2.0
    buckets = {s.labels["le"]: s.value for s in got["pbx_codes_annotation_latency_seconds_bucket"]}
    assert buckets["0.025"] == 1.0 and buckets["2.5"] == 1.0 and buckets["5.0"] == 2.0
    assert got["pbx_codes_annotation_latency_seconds_count"][0].value == 2.0


def test_each_program_has_its_own_registry_and_label_sets_are_bounded(resolver: Resolver) -> None:
    first, second = Metrics(max_series=3), Metrics()
    for code in ("701", "702", "703", "704", "705"):
        first.observe(annotate(resolver, code, "t", "asterisk"))
    codes = {s.labels["code"]: s.value for s in samples(first.render())["pbx_codes_hangups_total"]}
    assert codes == {"701": 1.0, "702": 1.0, "703": 1.0, "other": 2.0}
    assert "pbx_codes_hangups_total" not in samples(second.render())


@pytest.mark.asyncio
async def test_listener_connection_state_and_reconnects_are_read_at_scrape_time() -> None:
    from types import SimpleNamespace

    from prometheus_client.parser import text_string_to_metric_families

    from pbx_codes.sinks.metrics import Metrics

    metrics = Metrics()
    client = SimpleNamespace(connected=asyncio.Event(), connections=0)
    metrics.watch_listener("asterisk", client)

    def sample(name: str) -> float:
        for family in text_string_to_metric_families(metrics.render().decode()):
            for s in family.samples:
                if s.name == name and s.labels.get("pbx") == "asterisk":
                    return s.value
        return -1.0

    assert sample("pbx_codes_listener_connected") == 0
    client.connected.set()
    client.connections = 1
    assert sample("pbx_codes_listener_connected") == 1 and sample("pbx_codes_listener_reconnects_total") in (0, -1)
    client.connections = 3  # two reconnects since the last scrape
    assert sample("pbx_codes_listener_reconnects_total") == 2
    assert sample("pbx_codes_listener_reconnects_total") == 2  # a scrape does not count them again


def _samples(metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(metrics.render().decode())
            for s in family.samples if s.name == name}


def test_each_parts_state_failures_and_refused_logins_are_read_at_scrape_time() -> None:
    from pbx_codes.sinks.metrics import Metrics
    from pbx_codes.status import Health, PartStatus

    health = Health()
    ami = PartStatus("AMI 127.0.0.1:5038")
    health.add(ami)
    health.add(lambda: PartStatus("store", state="up"))
    metrics = Metrics()
    metrics.watch_health(health)
    ami.set("refused", "Authentication failed")
    ami.refusals, ami.failures = 2, 2
    up = _samples(metrics, "pbx_codes_part_up")
    assert up == {(("part", "AMI 127.0.0.1:5038"),): 0.0, (("part", "store"),): 1.0}
    state = _samples(metrics, "pbx_codes_part_state")
    assert state[(("part", "AMI 127.0.0.1:5038"), ("state", "refused"))] == 1.0
    assert state[(("part", "AMI 127.0.0.1:5038"), ("state", "up"))] == 0.0
    assert _samples(metrics, "pbx_codes_part_login_refusals_total")[(("part", "AMI 127.0.0.1:5038"),)] == 2.0
    ami.set("up")
    assert _samples(metrics, "pbx_codes_part_up")[(("part", "AMI 127.0.0.1:5038"),)] == 1.0


def test_fastagi_refusals_are_counted_by_reason() -> None:
    from types import SimpleNamespace

    from pbx_codes.adapters.agi_server import AgiStats
    from pbx_codes.sinks.metrics import Metrics

    stats = AgiStats(connections=10, too_large=3, evicted=2, refused_busy=1, active=3, open=4)
    metrics = Metrics()
    metrics.watch_listener("fastagi", SimpleNamespace(stats=stats))  # what run_asterisk hands over
    refused = _samples(metrics, "pbx_codes_fastagi_refused_total")
    assert refused == {(("reason", "too_large"),): 3.0, (("reason", "evicted"),): 2.0, (("reason", "busy"),): 1.0,
                       (("reason", "request_timeout"),): 0.0}
    assert _samples(metrics, "pbx_codes_fastagi_connections_open") == {(): 4.0}
