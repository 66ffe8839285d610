"""The live Asterisk side: AMI client + observer + resolver + bus, and the FastAGI server, started from config.

The listener is the observer's I/O: it hands each wanted event to `AsteriskObserver`, asks Asterisk (``Getvar``
on the A-leg) for the carrier's phrase whenever the observer wants it, and publishes every annotation on the bus
without waiting for any sink. ``replay`` runs the same observer over a capture, so what a capture shows is what the
listener would have done.

Optional AMI write-back (``ami.writeback = true``) sets ``CDR(pbx_*)`` on the A-leg by ``Setvar``. It is a race
(which CDR record it lands in depends on timing, and after the A-leg's ``Hangup`` it always fails), so the
dependable path is the FastAGI ``annotate`` handler from the hangup handler; this is off by default.

Configuration (``[asterisk]`` section of ``pbx-codes.toml``, read into `pbx_codes.config.AsteriskSection`)::

    [asterisk]
    catalog = "lifecell"          # optional: for a leg the dialplan names none for (before trunk bindings)
    language = "uk"               # optional: language of pbx_reason (else the top-level language)

    [asterisk.ami]
    enabled = true
    host = "127.0.0.1"
    port = 5038
    username = "pbx-codes"
    secret_env = "PBX_CODES_AMI_SECRET"    # the secret is read from here ...
    secret_file = "/etc/pbx-codes/ami.secret"  # ... or from the first line of this file
    server_filters = false        # Filter action (needs `system` write); the shipped eventfilter lines suffice
    fetch_phrases = true          # Getvar HANGUPCAUSE(<B-leg>,tech) on the A-leg
    writeback = false             # racy Setvar CDR(pbx_*) on the A-leg
    report_answered = true        # publish answered legs too (category ok): the denominator of failure rates
    ping_interval = 20.0
    ping_timeout = 5.0
    reconnect_min = 0.5           # after a session that worked; doubles for a server that breaks at once
    reconnect_max = 30.0          # (backoff_initial / backoff_max before: still read, with a warning)
    probe_interval = 0.5          # between connects while Asterisk refuses them: back within ~1 s of it listening
    auth_failure_backoff = 60.0   # at least this long after a refused login (refused_backoff before)

    [asterisk.agi]
    enabled = true
    host = "127.0.0.1"
    port = 4573
    timeout = 10.0
    max_bytes = 255
    max_sessions = 256            # connections at once; past it, one still sending its request makes room
    max_session_bytes = 32768     # bytes one connection may send (a real request is 1-2 KB)
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from pbx_codes.adapters.agi_server import AgiServer
from pbx_codes.adapters.ami_client import AmiClient, AmiError, AmiSettings, filters_for
from pbx_codes.adapters.secrets import read_secret
from pbx_codes.config import AmiSection, AsteriskSection, parse_table
from pbx_codes.model import Observation
from pbx_codes.observers.asterisk import WANTED_EVENTS, AsteriskObserver, PhraseFetch, parse_tech_cause
from pbx_codes.protocols import safe_value
from pbx_codes.protocols.ami import Event
from pbx_codes.runtime.ports import Publishes, Resolves
from pbx_codes.writeback.agi_annotate import WritebackSettings, annotation_fields, make_routes

log = logging.getLogger(__name__)


class AmiListener:
    """Wires an `AmiClient` to an `AsteriskObserver`, a resolver and a bus (anything with ``publish``)."""

    def __init__(self, settings: AmiSettings, secret: str, resolver: Resolves, bus: Publishes, *,
                 catalog: str | None = None,
                 fetch_phrases: bool = True, writeback: bool = False, language: str = "en",
                 max_bytes: int = 255, report_answered: bool = True) -> None:
        catalogs = getattr(resolver, "catalogs", None)  # to choose a leg's catalog as the FastAGI path does
        self.observer = AsteriskObserver(catalog=catalog, fetch_phrases=fetch_phrases,
                                         report_answered=report_answered, fetches_always_answered=True,
                                         known_catalogs=catalogs)
        self.client = AmiClient(settings, secret, self.on_event)
        self.resolver = resolver
        self.bus = bus
        self.writeback = writeback
        self.language = language
        self.max_bytes = max_bytes
        self._a_channel: dict[str, str] = {}  # B channel -> A channel, for write-back
        self._tasks: set[asyncio.Task[None]] = set()
        self.published = 0

    async def run(self) -> None:
        await self.client.run()

    async def close(self) -> None:
        """Stop; legs that hung up but were still waiting for their phrase are published without it, not lost."""
        await self.client.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._emit(self.observer.flush())

    def on_event(self, event: Event) -> None:
        self._emit(self.observer.on_event(event))
        for fetch in self.observer.take_fetches():
            self._spawn(self._fetch(fetch))

    def _emit(self, observations: list[Observation]) -> None:
        for obs in observations:
            annotation = self.resolver.resolve(obs)
            self.bus.publish(annotation)
            self.published += 1
            a_channel = self._a_channel.pop(obs.channel or "", None)
            if self.writeback and a_channel:
                self._spawn(self._write_back(a_channel, annotation))

    async def _fetch(self, fetch: PhraseFetch) -> None:
        value, final = await self._read_tech_cause(fetch)
        if self.writeback:
            self._a_channel[fetch.b_channel] = fetch.a_channel
            if len(self._a_channel) > 10000:
                self._a_channel.pop(next(iter(self._a_channel)))
        self._emit(self.observer.on_phrase(fetch.variable, value, final=final))
        for again in self.observer.take_fetches():  # an unfinished answer whose leg has already ended
            self._spawn(self._fetch(again))

    async def _getvar(self, channel: str, variable: str) -> str | None:
        """One Getvar; None when it failed (the channel is gone, or the connection)."""
        try:
            response = await self.client.send_action("Getvar", Channel=channel, Variable=variable)
        except (TimeoutError, AmiError, OSError) as exc:
            log.debug("Getvar %s on %s failed: %s", variable, channel, exc)
            return None
        return response.get("Value") or "" if response.ok else None

    async def _read_tech_cause(self, fetch: PhraseFetch) -> tuple[str | None, bool]:
        """``HANGUPCAUSE(<B>,tech)`` read on the A-leg, and whether the answer is final.

        The value is "" when Asterisk holds none for the leg (no response came from the carrier), None when the
        A-leg is gone. ``HANGUPCAUSE_KEYS()`` is asked first: HANGUPCAUSE of a leg it does not list makes Asterisk
        log a WARNING. The B-leg's HangupRequest is published before the calling channel's Dial has read the leg's
        final cause, so an early answer that is empty or a provisional (``SIP 100 Trying``) is not final: the
        observer asks again, settled, at the leg's DialEnd or Hangup (Dial has read the cause by then).
        """
        keys = await self._getvar(fetch.a_channel, "HANGUPCAUSE_KEYS()")
        if keys is None:
            return None, True  # the A-leg is gone: nothing more can be read
        if fetch.b_channel not in (key.strip() for key in keys.split(",")):
            return "", fetch.settled
        value = await self._getvar(fetch.a_channel, fetch.variable)
        if value is None:
            return None, True
        code, _ = parse_tech_cause(value)
        return value, fetch.settled or (code is not None and not code.startswith("1"))

    async def _write_back(self, a_channel: str, annotation: Any) -> None:
        for name, value in annotation_fields(annotation, self.language).items():
            try:
                response = await self.client.send_action(
                    "Setvar", Channel=a_channel, Variable=f"CDR({name})", Value=safe_value(value, self.max_bytes))
            except (TimeoutError, AmiError, OSError):
                return
            if not response.ok:  # the A-leg is gone: every further Setvar would fail too
                log.debug("AMI write-back to %s stopped: %s", a_channel, response.message)
                return

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def ami_settings(section: AmiSection | Mapping[str, Any]) -> AmiSettings:
    """`AmiSettings` from the ``[asterisk.ami]`` section (a table is read through `pbx_codes.config`)."""
    ami: AmiSection = parse_table(AmiSection, section, section="asterisk.ami")
    # Off by default: the Filter action needs `system` write, which the shipped least-privilege user lacks; its
    # `eventfilter` lines in manager_pbx_codes.conf already make Asterisk send only these events.
    filters = filters_for(WANTED_EVENTS) if ami.server_filters else ()
    return AmiSettings(
        host=ami.host, port=ami.port, username=ami.username, events=ami.events,
        filters=filters, wanted_events=WANTED_EVENTS,
        ping_interval=ami.ping_interval, ping_timeout=ami.ping_timeout,
        backoff_initial=ami.reconnect_min, backoff_max=ami.reconnect_max,
        probe_interval=ami.probe_interval, refused_backoff=ami.auth_failure_backoff,
        action_timeout=ami.action_timeout,
    )


async def run_asterisk(config_section: AsteriskSection | Mapping[str, Any] | None, resolver: Resolves,
                       bus: Publishes, *,
                       language: str = "en",
                       on_client: Callable[[str, Any], None] | None = None) -> None:
    """Start what the ``[asterisk]`` section enables (AMI listener, FastAGI server) and run until cancelled."""
    section: AsteriskSection = parse_table(AsteriskSection, config_section, section="asterisk")
    ami, agi = section.ami, section.agi
    language = section.language or language
    catalog = section.catalog
    max_bytes = agi.max_bytes
    jobs: list[Any] = []
    closers: list[Any] = []
    # A missing secret is a start-up error: found before anything listens, so nothing is left half started.
    secret = read_secret(ami.secret_env, ami.secret_file) if ami.enabled else ""
    if agi.enabled:
        # With the AMI listener on, it publishes every leg it saw; the AGI path then publishes only the attempts
        # that created no leg (no channel, so no AMI event): a call reaches the store whichever path saw it.
        server = AgiServer(
            # Only a forced catalog: with none named, the resolver's trunk bindings and then its default decide, as
            # they do for the AMI listener's legs.
            make_routes(resolver, WritebackSettings(language, max_bytes), catalog, bus.publish,
                        publish_all=not ami.enabled),
            host=agi.host, port=agi.port, timeout=agi.timeout, max_sessions=agi.max_sessions,
            max_session_bytes=agi.max_session_bytes)
        await server.start()
        if on_client is not None:  # metrics read its sessions and refusals at scrape time
            on_client("fastagi", server)
        jobs.append(server.serve_forever())
        closers.append(server.close)
    if ami.enabled:
        listener = AmiListener(ami_settings(ami), secret, resolver, bus, catalog=catalog,
                               fetch_phrases=ami.fetch_phrases, writeback=ami.writeback, language=language,
                               max_bytes=max_bytes, report_answered=ami.report_answered)
        if on_client is not None:  # e.g. metrics reading the connection state at scrape time
            on_client("asterisk", listener.client)
        jobs.append(listener.run())
        closers.append(listener.close)
    if not jobs:
        log.warning("[asterisk]: neither ami nor agi is enabled; nothing to run")
        return
    try:
        await asyncio.gather(*jobs)
    finally:
        for close in closers:
            await close()


__all__ = ["AmiListener", "ami_settings", "run_asterisk"]
