"""Prometheus metrics for the program: hangups by reason, unknown codes, listener state, annotation latency.

Each program builds its own `CollectorRegistry` (no process-wide default), so tests and several programs in one
process never see each other's counters. Label values come from the network (trunk names, codes): they are cut to
a sane length and, past a bound on distinct label sets, folded into `other`, so a carrier that invents a code per
call cannot grow the exposition without end.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from pbx_codes.model import Annotation
from pbx_codes.quality import legs as quality_legs
from pbx_codes.quality.classes import ClassTable, load_table
from pbx_codes.sinks.bus import AnnotationBus, Subscription

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Post-dial and session request delays (seconds): a few ms on a LAN trunk up to a long international setup.
DELAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0)
#: Answered call durations (seconds).
DURATION_BUCKETS = (5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)
MAX_LABEL_LENGTH = 64
MAX_SERIES = 5000
OTHER = "other"


def _label(value: Any) -> str:
    text = "" if value is None else str(value)
    return text[:MAX_LABEL_LENGTH]


@dataclass(slots=True, eq=False)  # identity hash: the registry keys collectors by object
class _BusCollector:
    """Reads the bus at scrape time: annotations published, and per subscriber the queue depth and the drops."""

    bus: AnnotationBus

    def collect(self) -> Iterable[Any]:
        published = CounterMetricFamily("pbx_codes_bus_published", "Annotations published on the bus")
        published.add_metric([], self.bus.published)
        dropped = CounterMetricFamily("pbx_codes_bus_dropped", "Annotations a slow sink lost", labels=["sink"])
        depth = GaugeMetricFamily("pbx_codes_bus_queue_depth", "Annotations waiting for a sink", labels=["sink"])
        for sub in list(self.bus.subscriptions):
            dropped.add_metric([sub.name], sub.dropped)
            depth.add_metric([sub.name], sub.queue.qsize())
        yield from (published, dropped, depth)

    def describe(self) -> Iterable[Any]:
        return []


@dataclass(slots=True, eq=False)
class _HealthCollector:
    """Each part's state at scrape time: up or not, which state, and its failure and refusal counts."""

    health: Any  # pbx_codes.status.Health

    def collect(self) -> Iterable[Any]:
        from pbx_codes.status import STATES

        up = GaugeMetricFamily("pbx_codes_part_up", "1 while the part works (connected, writing, delivering)",
                               labels=["part"])
        state = GaugeMetricFamily("pbx_codes_part_state", "1 for the state the part is in", labels=["part", "state"])
        failures = CounterMetricFamily("pbx_codes_part_failures", "Attempts that failed (connect, login, write, post)",
                                       labels=["part"])
        refusals = CounterMetricFamily("pbx_codes_part_login_refusals", "Logins or passwords the peer refused",
                                       labels=["part"])
        for part in self.health.parts():
            name = _label(part.part)
            up.add_metric([name], 1 if part.up else 0)
            for each in STATES:
                state.add_metric([name, each], 1 if part.state == each else 0)
            failures.add_metric([name], part.failures)
            refusals.add_metric([name], part.refusals)
        yield from (up, state, failures, refusals)

    def describe(self) -> Iterable[Any]:
        return []


@dataclass(slots=True, eq=False)
class _AgiCollector:
    """The FastAGI server's connections: open now, and those a limit refused or cut, by reason."""

    server: Any  # pbx_codes.adapters.agi_server.AgiServer

    def collect(self) -> Iterable[Any]:
        stats = self.server.stats
        active = GaugeMetricFamily("pbx_codes_fastagi_connections_open", "FastAGI connections open now")
        active.add_metric([], getattr(stats, "open", stats.active))
        total = CounterMetricFamily("pbx_codes_fastagi_connections", "FastAGI connections accepted")
        total.add_metric([], stats.connections)
        refused = CounterMetricFamily("pbx_codes_fastagi_refused",
                                      "FastAGI connections refused or cut by a limit: too_large (max_session_bytes), "
                                      "evicted (made room under max_sessions), busy (no slot or connection to "
                                      "spare), request_timeout (no whole request in time)",
                                      labels=["reason"])
        for reason, count in stats.refusals.items():
            refused.add_metric([reason], count)
        yield from (active, total, refused)

    def describe(self) -> Iterable[Any]:
        return []


@dataclass(slots=True)
class Metrics:
    """The program's metrics and the task that counts annotations from a bus subscription."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))
    max_series: int = MAX_SERIES
    hangups: Counter = field(init=False)
    unknown_codes: Counter = field(init=False)
    connected: Gauge = field(init=False)
    reconnects: Counter = field(init=False)
    latency: Histogram = field(init=False)
    #: Outcome classes for the trunk quality counters (the `[quality]` table).
    quality: ClassTable = field(default_factory=load_table)
    seizures: Counter = field(init=False)
    pdd: Histogram = field(init=False)
    srd: Histogram = field(init=False)
    duration: Histogram = field(init=False)
    _series: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)
    _seized: dict[tuple[str, ...], Any] = field(default_factory=dict)  # labels -> (counter child, pbx, trunk)
    #: (metric, labels as given) -> its child (see `_child`).
    _children: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    _delays: dict[tuple[str, str], tuple[Any, Any, Any]] = field(default_factory=dict)  # (pbx, trunk) -> histograms
    _task: asyncio.Task[None] | None = None
    _listeners: list[tuple[str, Any, list[int]]] = field(default_factory=list)
    _bus: AnnotationBus | None = None
    _sub: Subscription | None = None

    def __post_init__(self) -> None:
        r = self.registry
        # `pbx_instance`: the agent of a fleet that saw the leg (`instance` in pbx-codes.toml); not `instance`,
        # which Prometheus gives every scraped target itself.
        self.hangups = Counter("pbx_codes_hangups", "Annotated hangups by reason",
                               ["pbx_instance", "pbx", "trunk", "catalog", "category", "code"], registry=r)
        self.unknown_codes = Counter("pbx_codes_unknown_codes", "Hangups whose code no catalog knew exactly",
                                     ["pbx_instance", "pbx", "trunk", "catalog", "code"], registry=r)
        self.connected = Gauge("pbx_codes_listener_connected", "1 while the listener's PBX connection is up",
                               ["pbx"], registry=r)
        self.reconnects = Counter("pbx_codes_listener_reconnects", "Times a listener connected again after a loss",
                                  ["pbx"], registry=r)
        self.latency = Histogram("pbx_codes_annotation_latency_seconds",
                                 "From the PBX's hangup time to the annotation reaching the sinks",
                                 ["pbx"], buckets=LATENCY_BUCKETS, registry=r)
        # Trunk quality: one count per seizure with its outcome class, whether the class counts for NER, and its
        # RFC 6076 response bucket (200, effective, ineffective, redirect, other; not_sent: no INVITE went out, out
        # of SER, SEER and ISA), so PromQL computes ASR, NER,
        # SER, SEER and ISA over any window (see prometheus/pbx-codes.rules.yml).
        self.seizures = Counter("pbx_codes_trunk_seizures", "Outbound attempts on a trunk by outcome class",
                                ["pbx", "trunk", "class", "ner", "response"], registry=r)
        self.pdd = Histogram("pbx_codes_trunk_pdd_seconds", "Post-dial delay: dial to first ringing or progress",
                             ["pbx", "trunk"], buckets=DELAY_BUCKETS, registry=r)
        self.srd = Histogram("pbx_codes_trunk_srd_seconds",
                             "Session request delay (RFC 6076): INVITE to first non-100 provisional or final response",
                             ["pbx", "trunk"], buckets=DELAY_BUCKETS, registry=r)
        self.duration = Histogram("pbx_codes_trunk_call_duration_seconds", "Answered seizures: answer to end",
                                  ["pbx", "trunk"], buckets=DURATION_BUCKETS, registry=r)

    def _bounded(self, metric: str, labels: tuple[str, ...], code_index: int) -> tuple[str, ...]:
        """The labels as given while the metric's series count is under the bound; past it a new code is `other`."""
        series = self._series.setdefault(metric, set())
        if labels in series:
            return labels
        if len(series) < self.max_series:
            series.add(labels)
            return labels
        folded = labels[:code_index] + (OTHER,) + labels[code_index + 1:]
        series.add(folded)
        return folded

    def _child(self, metric: Any, name: str, labels: tuple[str, ...], code_index: int) -> Any:
        """The metric's child for these labels (bounded as `_bounded` does), found again without prometheus_client's
        per-call label checks: it runs for every hangup. A label set keeps its series once placed (the set only
        grows), so the cache is exact; it starts again past a bound, as the raw labels may not be."""
        key = (name, *labels)
        child = self._children.get(key)
        if child is None:
            if len(self._children) >= 4 * self.max_series:
                self._children.clear()
            child = self._children[key] = metric.labels(*self._bounded(name, labels, code_index))
        return child

    def observe(self, annotation: Annotation, now: float | None = None) -> None:
        """Count one annotation (the consumer task calls this for every annotation on the bus)."""
        obs, res = annotation.observation, annotation.resolution
        pbx, trunk, catalog = _label(obs.pbx), _label(obs.trunk), _label(res.catalog)
        code, instance = _label(res.code), _label(obs.instance)
        self._child(self.hangups, "hangups", (instance, pbx, trunk, catalog, res.category.value, code), 5).inc()
        if res.match_kind in ("class", "none"):
            self._child(self.unknown_codes, "unknown", (instance, pbx, trunk, catalog, code), 4).inc()
        if obs.timestamp is not None:
            now = time.time() if now is None else now
            latency = self._children.get(("latency", pbx))
            if latency is None:
                latency = self._children[("latency", pbx)] = self.latency.labels(pbx)
            latency.observe(max(0.0, now - obs.timestamp))
        if obs.attempt is not None and obs.trunk:
            self.observe_seizure(annotation, pbx, trunk)

    def observe_seizure(self, annotation: Annotation, pbx: str, trunk: str) -> None:
        """Count one seizure (an attempt on a trunk) in the quality counters and its delays in the histograms."""
        # Runs once per seizure on the event loop: children are cached, the leg's fields read directly.
        obs, res = annotation.observation, annotation.resolution
        table = self.quality
        category = res.category.value
        outcome = obs.outcome.value if obs.outcome is not None else None
        answered = quality_legs.is_answered(category, outcome)
        cls = table.classify(category)
        key = (pbx, trunk, cls.name, "yes" if cls.ner else "no",
               "200" if answered else table.response(res.sip or obs.sip_code, outcome, res.code))
        found = self._seized.get(key)
        if found is None:
            labels = self._bounded("seizures", key, 1)  # past the bound a new trunk is `other`, here and below
            found = self._seized[key] = (self.seizures.labels(*labels), labels[0], labels[1])
        child, pbx, trunk = found
        child.inc()
        started, progress, answer, end = obs.started_at, obs.progress_at, obs.answered_at, obs.ended_at
        if started is None and answer is None:
            return
        delays = self._delays.get((pbx, trunk))
        if delays is None:
            delays = self._delays[(pbx, trunk)] = (self.pdd.labels(pbx, trunk), self.srd.labels(pbx, trunk),
                                                   self.duration.labels(pbx, trunk))
        for histogram, value in ((delays[0], quality_legs.pdd(started, progress, answer, answered)),
                                 (delays[1], quality_legs.srd(started, progress, answer, end, answered, outcome,
                                                              category)),
                                 (delays[2], quality_legs.duration(answer, end, answered))):
            if value is not None:
                histogram.observe(value)

    def listener_state(self, pbx: str, connected: bool) -> None:
        """For the listeners: their connection went up or down."""
        self.connected.labels(_label(pbx)).set(1 if connected else 0)

    def listener_reconnected(self, pbx: str) -> None:
        self.reconnects.labels(_label(pbx)).inc()

    def watch_listener(self, pbx: str, client: Any) -> None:
        """Read a listener client's state at each scrape: anything with `connected` (an Event) and `connections`;
        a FastAGI server (``stats``) is read by `watch_agi`."""
        if not hasattr(client, "connected") and hasattr(client, "stats"):
            self.watch_agi(client)
            return
        self._listeners.append((pbx, client, [0]))

    def watch_health(self, health: Any) -> None:
        """Expose every part's state (`pbx_codes.status.Health`) at scrape time."""
        self.registry.register(_HealthCollector(health))

    def watch_agi(self, server: Any) -> None:
        """Expose a FastAGI server's open connections and its refusals at scrape time."""
        self.registry.register(_AgiCollector(server))

    def _poll_listeners(self) -> None:
        for pbx, client, seen in self._listeners:
            self.listener_state(pbx, client.connected.is_set())
            connections = int(getattr(client, "connections", 0))
            for _ in range(max(0, connections - max(seen[0], 1))):  # every connection after the first is a reconnect
                self.listener_reconnected(pbx)
            seen[0] = max(seen[0], connections, 1) if connections else seen[0]

    def watch_bus(self, bus: AnnotationBus) -> None:
        """Expose the bus's own counters (published, per-sink drops and queue depth) at scrape time."""
        self.registry.register(_BusCollector(bus))

    def render(self) -> bytes:
        """The text exposition for /metrics."""
        self._poll_listeners()
        return generate_latest(self.registry)

    def start(self, bus: AnnotationBus) -> None:
        """Subscribe to the bus and count every annotation from now on."""
        if self._task is None:
            self._bus, self._sub = bus, bus.subscribe("metrics")
            self._task = asyncio.create_task(self._consume(self._sub), name="pbx-codes-metrics")

    async def _consume(self, sub: Subscription) -> None:
        while True:
            self.observe(await sub.queue.get())
            while not sub.queue.empty():
                self.observe(sub.queue.get_nowait())

    def catch_up(self) -> None:
        """Count what is already queued (tests, and a last scrape before exit)."""
        if self._sub is not None:
            while not self._sub.queue.empty():
                self.observe(self._sub.queue.get_nowait())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._bus is not None and self._sub is not None:
            self._bus.unsubscribe(self._sub)


async def run_metrics(bus: AnnotationBus, quality: ClassTable | None = None) -> Metrics:
    """What `serve` calls: a registry of this program's metrics, counting the bus. Close with `await close()`."""
    metrics = Metrics(quality=quality) if quality is not None else Metrics()
    metrics.watch_bus(bus)
    metrics.start(bus)
    return metrics


__all__ = ["CONTENT_TYPE", "Metrics", "run_metrics"]
