"""Cause-rate alerts: rules from the `[[alerts]]` tables, evaluated on sliding windows as annotations arrive.

Two kinds of rule:

    {trunk = "lifecell", category = "capacity", above = 0.2, window = 300, min_calls = 5}
        fires when more than 20 % of the trunk's hangups in the last 300 s were `capacity`, out of at least 5;
    {trunk = "*", category = "billing", count_at_least = 1, window = 60}
        fires, per trunk, as soon as one `billing` hangup is in the last minute.

    {trunk = "*", measure = "ner", below = 0.9, window = 900, min_calls = 20}
        fires when a trunk's NER over the last 15 minutes is below 90 %, out of at least 20 seizures; the trunk
        quality measures (`pbx_codes.quality`) are `asr`, `ner`, `ser`, `seer`, `isa` (shares), `pdd_p50_ms`,
        `pdd_p95_ms`, `srd_p95_ms` and `acd_s`, each with `above` or `below`; only seizures count for them.

`trunk = "*"` watches every trunk separately; `category = "*"` counts every failure (not ok, not pending). No alert
storm: a fired alert clears only once the value is below a lower threshold (`clear_below`, default 0.8 x the firing
one) and it has been fired for `hold` seconds, so a rate hovering at the threshold fires once. Windows advance on the
engine's clock (arrival time), and a timer re-evaluates them, so an alert also clears when the traffic stops.
Events go to registered callbacks (the console), to the log, and to a webhook when one is configured.
"""
from __future__ import annotations

import asyncio
import bisect
import inspect
import json
import logging
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from pbx_codes.adapters.reconnect import Backoff, BackoffPolicy, Ending
from pbx_codes.config import AlertSection, parse_table, to_table
from pbx_codes.errors import ConfigError
from pbx_codes.model import Annotation, Category
from pbx_codes.quality import legs as quality_legs
from pbx_codes.quality.classes import NOT_SENT, ClassTable, load_table
from pbx_codes.quality.measures import percentile
from pbx_codes.sinks.bus import AnnotationBus, Subscription
from pbx_codes.status import DOWN, UP, PartStatus, describe_error

log = logging.getLogger("pbx_codes.alerts")
#: Retries of a webhook post: 1, 2, 4, 8 s (+/- 20 %) between the 5 attempts of one event.
WEBHOOK_BACKOFF = BackoffPolicy(initial=1.0, maximum=30.0)

SUCCESS_CATEGORIES = frozenset({"ok", "pending"})
ANY = "*"
_CATEGORIES = frozenset(c.value for c in Category)
#: Trunk quality measures an alert may watch: shares (0..1) and values (milliseconds, seconds).
RATIO_MEASURES = ("asr", "ner", "ser", "seer", "isa")
VALUE_MEASURES = ("pdd_p50_ms", "pdd_p95_ms", "srd_p95_ms", "acd_s")
MEASURES = RATIO_MEASURES + VALUE_MEASURES
_MEASURE_NAMES = {"asr": "ASR", "ner": "NER", "ser": "SER", "seer": "SEER", "isa": "ISA", "pdd_p50_ms": "PDD p50",
                  "pdd_p95_ms": "PDD p95", "srd_p95_ms": "SRD p95", "acd_s": "ACD"}


class AlertConfigError(ConfigError):
    """An `[[alerts]]` table that does not describe a rule."""


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One `[[alerts]]` table, checked. Exactly one of `above` (a share, 0..1) and `count_at_least` is set."""

    name: str
    trunk: str = ANY
    category: str = ANY
    catalog: str = ANY
    pbx: str = ANY
    #: One agent of a fleet (its `instance`); ANY: every agent's legs count together (a central console).
    instance: str = ANY
    above: float | None = None
    count_at_least: int | None = None
    window: float = 300.0
    min_calls: int = 1
    clear_below: float | None = None
    hold: float = 60.0
    webhook: str | None = None
    #: A trunk quality measure (see MEASURES) instead of a category; with `above` or `below`.
    measure: str | None = None
    below: float | None = None
    clear_above: float | None = None

    @property
    def threshold(self) -> float:
        if self.below is not None:
            return float(self.below)
        return float(self.above if self.above is not None else self.count_at_least or 0)

    @property
    def clear_threshold(self) -> float:
        if self.below is not None:  # a measure that must stay high clears once clearly above the threshold again
            if self.clear_above is not None:
                return self.clear_above
            if self.measure in RATIO_MEASURES:
                return self.below + 0.2 * (1.0 - self.below)
            return 1.25 * self.below
        return self.clear_below if self.clear_below is not None else 0.8 * self.threshold

    def scope(self, annotation: Annotation) -> str | None:
        """The trunk this annotation counts for under this rule, or None when the rule does not watch it."""
        obs = annotation.observation
        if self.pbx != ANY and obs.pbx != self.pbx:
            return None
        if self.instance != ANY and obs.instance != self.instance:
            return None
        if self.catalog != ANY and annotation.catalog != self.catalog:
            return None
        trunk = obs.trunk or ""
        if self.trunk != ANY and trunk != self.trunk:
            return None
        return trunk

    def hit(self, annotation: Annotation) -> bool:
        category = annotation.category.value
        return category not in SUCCESS_CATEGORIES if self.category == ANY else category == self.category


def _number(where: str, key: str, value: Any, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise AlertConfigError(f"{where}: {key} must be {'an integer' if integer else 'a number'}, got {value!r}")
    return value


def parse_rule(section: AlertSection | Mapping[str, Any], index: int = 0) -> AlertRule:
    """One ``[[alerts]]`` section into a rule (a table is read through `pbx_codes.config`, which checks keys and
    types); here, which keys go together. Every mistake is named with the table's position."""
    where = f"[[alerts]] #{index + 1}"
    raw = to_table(parse_table(AlertSection, section, section="alerts", label=where, error=AlertConfigError))
    if "measure" in raw:
        return _parse_measure_rule(raw, where)
    if "below" in raw or "clear_above" in raw:
        raise AlertConfigError(f"{where}: below and clear_above are for a measure (give measure = one of "
                               f"{list(MEASURES)})")
    category = raw.get("category", ANY)
    if category != ANY and category not in _CATEGORIES:
        raise AlertConfigError(f"{where}: category {category!r} is not one of {sorted(_CATEGORIES)} or '*'")
    if ("above" in raw) == ("count_at_least" in raw):
        raise AlertConfigError(f"{where}: give exactly one of above (a share) and count_at_least")
    above = count = None
    if "above" in raw:
        above = float(_number(where, "above", raw["above"]))
        if not 0 <= above < 1:
            raise AlertConfigError(f"{where}: above is a share of calls, 0 <= above < 1, got {above}")
    else:
        count = int(_number(where, "count_at_least", raw["count_at_least"], integer=True))
        if count < 1:
            raise AlertConfigError(f"{where}: count_at_least must be at least 1")
    window = float(_number(where, "window", raw.get("window", 300)))
    hold = float(_number(where, "hold", raw.get("hold", 60)))
    min_calls = int(_number(where, "min_calls", raw.get("min_calls", 1), integer=True))
    if window <= 0 or hold < 0 or min_calls < 1:
        raise AlertConfigError(f"{where}: window must be > 0, hold >= 0 and min_calls >= 1")
    clear_below = raw.get("clear_below")
    threshold = above if above is not None else float(count or 0)
    if clear_below is not None:
        clear_below = float(_number(where, "clear_below", clear_below))
        if clear_below > threshold:
            raise AlertConfigError(f"{where}: clear_below must not exceed the firing threshold {threshold}")
    webhook = raw.get("webhook")
    if webhook is not None and urlsplit(webhook).scheme not in ("http", "https"):
        raise AlertConfigError(f"{where}: webhook must be an http:// or https:// URL")
    trunk = raw.get("trunk", ANY)
    name = (raw.get("name")
            or f"{category if category != ANY else 'failures'} on {trunk if trunk != ANY else 'any trunk'}")
    return AlertRule(name=name, trunk=trunk, category=category, catalog=raw.get("catalog", ANY),
                     pbx=raw.get("pbx", ANY), instance=raw.get("instance", ANY), above=above, count_at_least=count,
                     window=window, min_calls=min_calls, clear_below=clear_below, hold=hold, webhook=webhook)


def _parse_measure_rule(raw: Mapping[str, Any], where: str) -> AlertRule:
    """A rule over a trunk quality measure: `measure` with exactly one of `above` and `below`."""
    measure = raw["measure"]
    if measure not in MEASURES:
        raise AlertConfigError(f"{where}: measure {measure!r} is not one of {list(MEASURES)}")
    for key in ("category", "count_at_least"):
        if key in raw:
            raise AlertConfigError(f"{where}: {key} does not go with measure (a measure rule counts seizures)")
    if ("above" in raw) == ("below" in raw):
        raise AlertConfigError(f"{where}: give exactly one of above and below for measure {measure!r}")
    key = "above" if "above" in raw else "below"
    threshold = float(_number(where, key, raw[key]))
    if measure in RATIO_MEASURES and not 0 <= threshold <= 1:
        raise AlertConfigError(f"{where}: {measure} is a share, 0 <= {key} <= 1, got {threshold}")
    if threshold < 0:
        raise AlertConfigError(f"{where}: {key} must not be negative")
    window = float(_number(where, "window", raw.get("window", 300)))
    hold = float(_number(where, "hold", raw.get("hold", 60)))
    min_calls = int(_number(where, "min_calls", raw.get("min_calls", 1), integer=True))
    if window <= 0 or hold < 0 or min_calls < 1:
        raise AlertConfigError(f"{where}: window must be > 0, hold >= 0 and min_calls >= 1")
    clear_below = clear_above = None
    if key == "above" and "clear_below" in raw:
        clear_below = float(_number(where, "clear_below", raw["clear_below"]))
        if clear_below > threshold:
            raise AlertConfigError(f"{where}: clear_below must not exceed the firing threshold {threshold}")
    elif key == "below" and "clear_above" in raw:
        clear_above = float(_number(where, "clear_above", raw["clear_above"]))
        if clear_above < threshold:
            raise AlertConfigError(f"{where}: clear_above must not be under the firing threshold {threshold}")
    elif "clear_below" in raw or "clear_above" in raw:
        raise AlertConfigError(f"{where}: clear_below goes with above, clear_above with below")
    for text_key in ("name", "trunk", "catalog", "pbx", "instance", "webhook"):
        if text_key in raw and not isinstance(raw[text_key], str):
            raise AlertConfigError(f"{where}: {text_key} must be a string")
    webhook = raw.get("webhook")
    if webhook is not None and urlsplit(webhook).scheme not in ("http", "https"):
        raise AlertConfigError(f"{where}: webhook must be an http:// or https:// URL")
    trunk = raw.get("trunk", ANY)
    name = raw.get("name") or f"{_MEASURE_NAMES[measure]} on {trunk if trunk != ANY else 'any trunk'}"
    return AlertRule(name=name, trunk=trunk, category=ANY, catalog=raw.get("catalog", ANY), pbx=raw.get("pbx", ANY),
                     instance=raw.get("instance", ANY),
                     above=threshold if key == "above" else None, below=threshold if key == "below" else None,
                     window=window, min_calls=min_calls, clear_below=clear_below, clear_above=clear_above, hold=hold,
                     webhook=webhook, measure=measure)


def parse_rules(tables: Iterable[AlertSection | Mapping[str, Any]]) -> tuple[AlertRule, ...]:
    return tuple(parse_rule(raw, i) for i, raw in enumerate(tables))


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """An alert fired or cleared: what the console shows, the log says and the webhook receives."""

    state: str  # fired | cleared
    name: str
    trunk: str
    category: str
    kind: str  # share | count
    value: float
    threshold: float
    calls: int
    hits: int
    window: float
    time: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class _Window:
    """One rule's sliding window over one trunk, with running totals so each arrival costs O(1)."""

    events: deque[tuple[float, bool]] = field(default_factory=deque)
    calls: int = 0
    hits: int = 0
    active: bool = False
    since: float = 0.0

    def push(self, now: float, hit: bool) -> None:
        self.events.append((now, hit))
        self.calls += 1
        self.hits += hit

    def evict(self, now: float, window: float) -> None:
        events = self.events
        while events and events[0][0] <= now - window:
            _, hit = events.popleft()
            self.calls -= 1
            self.hits -= hit


@dataclass(slots=True)
class _MeasureWindow:
    """One measure rule's sliding window over one trunk's seizures: running share totals, and the timed values kept
    sorted so a percentile costs one index."""

    events: deque[tuple[float, int, int, float | None]] = field(default_factory=deque)
    calls: int = 0  # seizures in the window
    hits: int = 0  # the share's numerator
    base: int = 0  # the share's denominator (SER/SEER leave redirected seizures out)
    values: list[float] = field(default_factory=list)
    total: float = 0.0
    active: bool = False
    since: float = 0.0

    def push(self, now: float, hit: int, base: int, value: float | None) -> None:
        self.events.append((now, hit, base, value))
        self.calls += 1
        self.hits += hit
        self.base += base
        if value is not None:
            bisect.insort(self.values, value)
            self.total += value

    def evict(self, now: float, window: float) -> None:
        events = self.events
        while events and events[0][0] <= now - window:
            _, hit, base, value = events.popleft()
            self.calls -= 1
            self.hits -= hit
            self.base -= base
            if value is not None:
                del self.values[bisect.bisect_left(self.values, value)]
                self.total -= value

    def value(self, measure: str) -> float | None:
        if measure in RATIO_MEASURES:
            return self.hits / self.base if self.base else None
        if not self.values:
            return None
        if measure == "acd_s":
            return self.total / len(self.values)
        return percentile(self.values, 50 if measure == "pdd_p50_ms" else 95, presorted=True)


@dataclass(frozen=True, slots=True)
class _Seizure:
    """What the measure rules need of one seizure, worked out once per annotation."""

    answered: bool
    ner: bool
    response: str
    pdd: float | None
    srd: float | None
    duration: float | None


def _seizure(table: ClassTable, annotation: Annotation) -> _Seizure | None:
    """The seizure an annotation is, or None for a leg that is no attempt on a trunk (the caller's own leg)."""
    obs, res = annotation.observation, annotation.resolution
    if obs.attempt is None or not obs.trunk:
        return None
    category = res.category.value
    outcome = obs.outcome.value if obs.outcome is not None else None
    answered = quality_legs.is_answered(category, outcome)
    started, progress, answer, end = obs.started_at, obs.progress_at, obs.answered_at, obs.ended_at
    return _Seizure(answered, table.classify(category).ner,
                    "200" if answered else table.response(res.sip or obs.sip_code, outcome, res.code),
                    quality_legs.pdd(started, progress, answer, answered),
                    quality_legs.srd(started, progress, answer, end, answered, outcome, category),
                    quality_legs.duration(answer, end, answered))


def _contribution(measure: str, leg: _Seizure) -> tuple[int, int, float | None]:
    """What one seizure adds to a measure: (numerator, denominator, timed value)."""
    if measure == "asr":
        return int(leg.answered), 1, None
    if measure == "ner":
        return int(leg.ner), 1, None
    response = leg.response
    if response == NOT_SENT and measure in ("ser", "seer", "isa"):  # no INVITE went out: RFC 6076 counts none
        return 0, 0, None
    if measure in ("ser", "seer"):
        if response == "redirect":
            return 0, 0, None
        return int(response == "200" or (measure == "seer" and response == "effective")), 1, None
    if measure == "isa":
        return int(response == "ineffective"), 1, None
    seconds = leg.pdd if measure.startswith("pdd") else leg.srd if measure.startswith("srd") else leg.duration
    if seconds is None:
        return 0, 0, None
    return 0, 0, seconds * 1000.0 if measure.endswith("_ms") else seconds


Callback = Callable[[AlertEvent], Any]


def post_json(url: str, payload: Mapping[str, Any], timeout: float = 5.0) -> int:
    """POST one JSON object; returns the HTTP status. Blocking: run it in a thread."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8",
                                              "User-Agent": "pbx-codes-alerts"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return int(response.status)


class AlertEngine:
    """Evaluates the rules; `add_listener` registers a callback (sync or async) for every fired/cleared event."""

    def __init__(self, rules: Sequence[AlertRule], *, webhook: str | None = None,
                 clock: Callable[[], float] = time.time, tick: float = 5.0, webhook_timeout: float = 5.0,
                 quality: ClassTable | None = None, webhook_attempts: int = 5,
                 webhook_backoff: BackoffPolicy = WEBHOOK_BACKOFF) -> None:
        if webhook is not None and urlsplit(webhook).scheme not in ("http", "https"):
            raise AlertConfigError("alerts webhook must be an http:// or https:// URL")
        self.rules = tuple(rules)
        self.quality = quality if quality is not None else load_table()
        self.webhook = webhook
        self.clock = clock
        self.tick = tick
        self.webhook_timeout = webhook_timeout
        self.listeners: list[Callback] = []
        self.history: deque[AlertEvent] = deque(maxlen=200)
        self.webhook_failures = 0  # events no attempt could deliver
        self.webhook_attempts = max(1, webhook_attempts)
        self.webhook_backoff = webhook_backoff
        self.webhook_status = PartStatus("alert webhook", logger=log)  # logged once per change, in /metrics
        self._windows: dict[tuple[int, str], Any] = {}  # _Window, or _MeasureWindow for a measure rule
        self._pending: set[asyncio.Task[Any]] = set()
        self._webhook_order = asyncio.Lock()  # FIFO: a receiver never sees `cleared` before its `fired`
        self._tasks: list[asyncio.Task[Any]] = []
        self._bus: AnnotationBus | None = None
        self._sub: Subscription | None = None

    def add_listener(self, callback: Callback) -> None:
        self.listeners.append(callback)

    def active(self) -> list[tuple[AlertRule, str]]:
        """(rule, trunk) of every alert currently fired."""
        return [(self.rules[i], trunk) for (i, trunk), w in self._windows.items() if w.active]

    def observe(self, annotation: Annotation, now: float | None = None) -> list[AlertEvent]:
        """Count one annotation in every rule that watches its trunk, and fire or clear what changed."""
        now = self.clock() if now is None else now
        events = []
        leg: _Seizure | Literal[False] | None = None  # False: looked at, not a seizure
        for index, rule in enumerate(self.rules):
            trunk = rule.scope(annotation)
            if trunk is None:
                continue
            if rule.measure is not None:
                if leg is None:
                    leg = _seizure(self.quality, annotation) or False
                if leg is False:  # the caller's own leg is no attempt on the trunk
                    continue
                measured = self._windows.setdefault((index, trunk), _MeasureWindow())
                measured.push(now, *_contribution(rule.measure, leg))
                window = measured
            else:
                window = self._windows.setdefault((index, trunk), _Window())
                window.push(now, rule.hit(annotation))
            event = self._evaluate(rule, trunk, window, now)
            if event is not None:
                events.append(event)
        return events

    def evaluate(self, now: float | None = None) -> list[AlertEvent]:
        """The timer's pass: advance every window to `now` (so alerts clear when traffic stops) and drop idle ones."""
        now = self.clock() if now is None else now
        events = []
        for key, window in list(self._windows.items()):
            rule = self.rules[key[0]]
            event = self._evaluate(rule, key[1], window, now)
            if event is not None:
                events.append(event)
            if not window.events and not window.active:
                del self._windows[key]
        return events

    def _evaluate(self, rule: AlertRule, trunk: str, window: Any, now: float) -> AlertEvent | None:
        window.evict(now, rule.window)
        if rule.measure is not None:
            measured = window.value(rule.measure)
            value = measured if measured is not None else 0.0
            low = rule.below is not None
            firing = measured is not None and (measured < rule.threshold if low else measured > rule.threshold)
            calm = (measured is None or window.calls < rule.min_calls
                    or (measured > rule.clear_threshold if low else measured < rule.clear_threshold))
        else:
            share = rule.above is not None
            value = (window.hits / window.calls if window.calls else 0.0) if share else float(window.hits)
            firing = value > rule.threshold if share else value >= rule.threshold
            calm = value < rule.clear_threshold or (share and window.calls < rule.min_calls)
        if not window.active:
            enough = window.calls >= rule.min_calls
            if enough and firing:
                window.active, window.since = True, now
                return self._emit(self._event("fired", rule, trunk, window, value, now), rule)
            return None
        if now - window.since < rule.hold:
            return None
        if calm:
            window.active = False
            return self._emit(self._event("cleared", rule, trunk, window, value, now), rule)
        return None

    @staticmethod
    def _event(state: str, rule: AlertRule, trunk: str, window: Any, value: float, now: float) -> AlertEvent:
        category = rule.category if rule.category != ANY else "failures"
        if rule.measure is not None:
            measured_by = rule.measure

            def shown(v: float) -> str:
                if measured_by in RATIO_MEASURES:
                    return f"{v:.0%}"
                return f"{v:.0f} ms" if measured_by.endswith("_ms") else f"{v:.1f} s"
            low = rule.below is not None
            measure = f"{_MEASURE_NAMES[rule.measure]} {shown(value)} over {window.calls} seizures"
            limit = (f"fires {'below' if low else 'above'} {shown(rule.threshold)}, "
                     f"clears {'above' if low else 'below'} {shown(rule.clear_threshold)}")
            message = f"{rule.name} {state}: {measure} on {trunk or '-'} over {rule.window:g} s ({limit})"
            return AlertEvent(state=state, name=rule.name, trunk=trunk, category=rule.measure, kind="measure",
                              value=value, threshold=rule.threshold, calls=window.calls, hits=window.hits,
                              window=rule.window, time=now, message=message)
        if rule.above is not None:
            measure = f"{value:.0%} of {window.calls} calls were {category}"
            limit = f"fires above {rule.threshold:.0%}, clears below {rule.clear_threshold:.0%}"
        else:
            measure = f"{window.hits} {category} hangups"
            limit = f"fires at {rule.threshold:g}, clears below {rule.clear_threshold:g}"
        message = f"{rule.name} {state}: {measure} on {trunk or '-'} over {rule.window:g} s ({limit})"
        return AlertEvent(state=state, name=rule.name, trunk=trunk, category=rule.category,
                          kind="share" if rule.above is not None else "count", value=value,
                          threshold=rule.threshold, calls=window.calls, hits=window.hits, window=rule.window,
                          time=now, message=message)

    def _emit(self, event: AlertEvent, rule: AlertRule) -> AlertEvent:
        self.history.append(event)
        (log.warning if event.state == "fired" else log.info)("alert %s", event.message)
        for callback in list(self.listeners):
            try:
                result = callback(event)
                if inspect.isawaitable(result):
                    self._spawn(result)
            except Exception:
                log.exception("alert callback %r failed", callback)
        for url in dict.fromkeys(u for u in (self.webhook, rule.webhook) if u):
            self._spawn(self._post(url, event))
        return event

    def _spawn(self, awaitable: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(awaitable)
        except RuntimeError:  # no loop (a synchronous caller): nothing can run the coroutine
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            log.warning("alert notification skipped: no running event loop")
            return
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def webhooks(self) -> set[str]:
        """Every webhook URL an event may be posted to."""
        return {u for u in (self.webhook, *(r.webhook for r in self.rules)) if u}

    async def _post(self, url: str, event: AlertEvent) -> None:
        """Post one event, retrying with backoff; a webhook that is down never stops the alerts. The state (up, down)
        is logged once per change; an event no attempt delivered is counted in `webhook_failures`."""
        where = urlsplit(url)._replace(query="").geturl()  # a token in the query string stays out of the log
        backoff = Backoff(self.webhook_backoff)
        status = self.webhook_status
        async with self._webhook_order:
            for attempt in range(1, self.webhook_attempts + 1):
                try:
                    await asyncio.to_thread(post_json, url, event.to_dict(), self.webhook_timeout)
                except Exception as exc:
                    status.failures += 1
                    status.set(DOWN, f"{where}: {describe_error(exc)}; retried with backoff")
                    if attempt == self.webhook_attempts:
                        self.webhook_failures += 1
                        log.warning("alert %s %s not delivered to %s after %d attempts", event.name, event.state,
                                    where, attempt)
                        return
                    await asyncio.sleep(backoff.after(Ending.FAILED))
                else:
                    status.set(UP, f"{where}: delivered")
                    return

    async def notified(self) -> None:
        """Wait until every callback and webhook started so far has finished."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def start(self, bus: AnnotationBus) -> None:
        """Consume the bus and run the timer."""
        if self._tasks:
            return
        self._bus, self._sub = bus, bus.subscribe("alerts")
        self._tasks = [asyncio.create_task(self._consume(self._sub), name="pbx-codes-alerts"),
                       asyncio.create_task(self._timer(), name="pbx-codes-alerts-timer")]

    async def _consume(self, sub: Subscription) -> None:
        while True:
            self.observe(await sub.queue.get())

    async def _timer(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            self.evaluate()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._bus is not None and self._sub is not None:
            self._bus.unsubscribe(self._sub)
        await self.notified()


async def run_alerts(tables: Iterable[AlertSection | Mapping[str, Any]], bus: AnnotationBus, *,
                     webhook: str | None = None, tick: float = 5.0, quality: ClassTable | None = None) -> AlertEngine:
    """What `serve` calls with `config.alerts`: parse the rules and start evaluating. Close with `await close()`."""
    engine = AlertEngine(parse_rules(tables), webhook=webhook, tick=tick, quality=quality)
    engine.start(bus)
    return engine


__all__ = ["AlertConfigError", "AlertEngine", "AlertEvent", "AlertRule", "parse_rule", "parse_rules", "post_json",
           "run_alerts"]
