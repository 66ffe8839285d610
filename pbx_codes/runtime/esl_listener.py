"""The live FreeSWITCH listener: ESL client -> observer -> resolver -> bus, plus the hangup-hook endpoint.

`run_freeswitch(config_section, resolver, bus)` is what ``pbx-codes serve`` starts for a ``[freeswitch]`` section.
Configuration (read into `pbx_codes.config.FreeswitchSection`; every key optional)::

    [freeswitch]
    language = "uk"               # pbx_reason's language; default: the top-level language

    [freeswitch.esl]              # the event-socket listener (the store's live feed)
    enabled = true
    host = "127.0.0.1"            # event_socket.conf.xml listen-ip
    port = 8021
    secret_env = "PBX_CODES_ESL_PASSWORD"  # the password is read from here ...
    secret_file = "/etc/pbx-codes/esl.secret"  # ... or from the first line of this file
    events = [...]                # the hangup set; CHANNEL_HANGUP_COMPLETE is always added
    event_format = "json"         # json | plain
    heartbeat_timeout = 60        # seconds without any frame before reconnecting
    reconnect_min = 0.5           # backoff bounds, seconds
    reconnect_max = 30
    auth_failure_backoff = 60     # wait after a refused password
    probe_interval = 0.5          # between connects while FreeSWITCH refuses them

    [freeswitch.hook]             # the hangup-hook endpoint (the CDR write-back)
    enabled = true
    host = "127.0.0.1"            # loopback only
    port = 8089
    publish = false               # also publish hook-annotated legs to the bus (set it when esl is off, or legs
                                  # are counted twice)

The older flat keys (``host``, ``port``, ``password_env``, ``password_file``, ``events``..., ``esl = false``,
``hook = false``, ``hook_host``, ``hook_port``, ``hook_publish``, ``hook_lang``) are still read, with a warning.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from pbx_codes.adapters.esl_client import EslClient, EslClientConfig
from pbx_codes.adapters.secrets import SecretError, read_secret
from pbx_codes.config import ConfigError, EslSection, FreeswitchSection, parse_table
from pbx_codes.observers.freeswitch import FreeswitchObserver
from pbx_codes.protocols.esl import Event
from pbx_codes.runtime.ports import Publishes, Resolves
from pbx_codes.writeback.freeswitch_hook import HookServer

log = logging.getLogger("pbx_codes.freeswitch")

#: The event on which the observer decides a leg (the first one that says who hung up): always subscribed.
DECIDING_EVENT = "CHANNEL_HANGUP_COMPLETE"


class FreeswitchListener:
    """Turns each event into annotations on the bus; owns the observer's memory (dedup, trunk of the call)."""

    # What the parser decodes for this listener: the observer's events, plus the client's own (bgapi, liveness).
    # With ``events = ["ALL"]`` or any wide subscription, everything else is skipped unread.
    WANTED_EVENTS = FreeswitchObserver.WANTED_EVENTS | {"HEARTBEAT", "BACKGROUND_JOB"}

    def __init__(self, resolver: Resolves, bus: Publishes) -> None:
        self._resolver = resolver
        self._bus = bus
        self._observer = FreeswitchObserver(report_answered=True)  # answered legs: the rates' denominator
        self.published = 0

    def on_event(self, event: Event) -> None:
        for obs in self._observer.feed(event):
            self._bus.publish(self._resolver.resolve(obs))
            self.published += 1


def _section(section: FreeswitchSection | Mapping[str, Any] | None) -> FreeswitchSection:
    parsed: FreeswitchSection = parse_table(FreeswitchSection, section, section="freeswitch")
    return parsed


def client_config(section: FreeswitchSection | EslSection | Mapping[str, Any]) -> EslClientConfig:
    """The ESL part of a ``[freeswitch]`` section (its ``[freeswitch.esl]``), with the password read from env or
    file."""
    esl = section if isinstance(section, EslSection) else _section(section).esl
    try:
        password = read_secret(esl.secret_env, esl.secret_file)
    except SecretError as exc:
        raise ConfigError(f"[freeswitch.esl] no ESL password ({exc}; set the environment variable named by "
                          f"secret_env, here {esl.secret_env}, or secret_file)") from None
    events = esl.events
    if "ALL" not in events and DECIDING_EVENT not in events:
        events += (DECIDING_EVENT,)  # a leg is decided there: without it no leg would ever be annotated
    return EslClientConfig(
        host=esl.host, port=esl.port, password=password, events=events, event_format=esl.event_format,
        heartbeat_timeout=esl.heartbeat_timeout, reconnect_min=esl.reconnect_min, reconnect_max=esl.reconnect_max,
        auth_failure_backoff=esl.auth_failure_backoff, probe_interval=esl.probe_interval,
        wanted_events=FreeswitchListener.WANTED_EVENTS,
    )


def section_language(section: FreeswitchSection | Mapping[str, Any], default: str = "en") -> str:
    """The language of ``pbx_reason``: the section's ``language`` (the configuration fills in the top-level one;
    the older ``hook_lang`` is read as it), else `default`."""
    return _section(section).language or default


async def run_freeswitch(config_section: FreeswitchSection | Mapping[str, Any] | None, resolver: Resolves,
                         bus: Publishes, *,
                         on_client: Callable[[str, Any], None] | None = None, language: str = "en") -> None:
    """Run the ESL listener and the hook endpoint until cancelled."""
    section = _section(config_section)
    lang = section.language or language
    tasks: list[asyncio.Task[None]] = []
    if section.esl.enabled:
        listener = FreeswitchListener(resolver, bus)
        client = EslClient(client_config(section.esl), listener.on_event)
        if on_client is not None:  # e.g. metrics reading the connection state at scrape time
            on_client("freeswitch", client)
        tasks.append(asyncio.create_task(client.run(), name="freeswitch-esl"))
    if section.hook.enabled:
        hook = section.hook
        server = HookServer(resolver.resolve, host=hook.host, port=hook.port, lang=lang,
                            publish=bus.publish if hook.publish else None)
        tasks.append(asyncio.create_task(server.serve_forever(), name="freeswitch-hook"))
    if not tasks:
        log.warning("freeswitch: both esl and hook are disabled; nothing to run")
        return
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["FreeswitchListener", "client_config", "run_freeswitch", "section_language"]
