"""The live FreeSWITCH listener: ESL client -> observer -> resolver -> bus, plus the hangup-hook endpoint.

`run_freeswitch(config_section, resolver, bus)` is what ``pbx-codes serve`` starts for a ``[freeswitch]`` section.
Config keys (all optional):

============================  ===================  =====================================================
key                           default              meaning
============================  ===================  =====================================================
``host``                      ``127.0.0.1``        ESL address (event_socket.conf.xml ``listen-ip``)
``port``                      ``8021``             ESL port
``password_env``              ``PBX_CODES_ESL_PASSWORD``  environment variable holding the ESL password
``password_file``             (none)               file whose first line is the password (if env unset)
``events``                    hangup set           event names to subscribe to
``event_format``              ``json``             ``json`` or ``plain``
``heartbeat_timeout``         ``60``               seconds without any frame before reconnecting
``reconnect_min``/``_max``    ``0.5`` / ``30``     backoff bounds, seconds
``auth_failure_backoff``      ``60``               wait after a refused password, seconds
``probe_interval``            ``0.5``              between connects while FreeSWITCH refuses them, seconds
``esl``                       ``true``             run the ESL listener at all
``hook``                      ``true``             run the hangup-hook endpoint
``hook_host``/``hook_port``   ``127.0.0.1``/8089   where the hook endpoint listens (loopback only)
``language``                  top-level language   language of ``pbx_reason`` (uk, ru, en); ``hook_lang`` is
                                                   the older name and still read
``hook_publish``              ``false``            also publish hook-annotated legs to the bus (set it
                                                   when ``esl`` is off, or legs are counted twice)
============================  ===================  =====================================================
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Mapping

from pbx_codes.adapters.esl_client import DEFAULT_EVENTS, EslClient, EslClientConfig
from pbx_codes.adapters.secrets import SecretError, read_secret
from pbx_codes.model import LANGS
from pbx_codes.observers.freeswitch import FreeswitchObserver
from pbx_codes.protocols.esl import Event
from pbx_codes.writeback.freeswitch_hook import DEFAULT_PORT, HookServer

log = logging.getLogger("pbx_codes.freeswitch")

#: The event on which the observer decides a leg (the first one that says who hung up): always subscribed.
DECIDING_EVENT = "CHANNEL_HANGUP_COMPLETE"


class FreeswitchListener:
    """Turns each event into annotations on the bus; owns the observer's memory (dedup, trunk of the call)."""

    # What the parser decodes for this listener: the observer's events, plus the client's own (bgapi, liveness).
    # With ``events = ["ALL"]`` or any wide subscription, everything else is skipped unread.
    WANTED_EVENTS = FreeswitchObserver.WANTED_EVENTS | {"HEARTBEAT", "BACKGROUND_JOB"}

    def __init__(self, resolver: Any, bus: Any) -> None:
        self._resolver = resolver
        self._bus = bus
        self._observer = FreeswitchObserver(report_answered=True)  # answered legs: the rates' denominator
        self.published = 0

    def on_event(self, event: Event) -> None:
        for obs in self._observer.feed(event):
            self._bus.publish(self._resolver.resolve(obs))
            self.published += 1


def client_config(section: Mapping[str, Any]) -> EslClientConfig:
    """The ESL part of a ``[freeswitch]`` section, with the password read from env or file."""
    try:
        password = read_secret(section.get("password_env", "PBX_CODES_ESL_PASSWORD"), section.get("password_file"))
    except SecretError as exc:
        raise ValueError(f"freeswitch: no ESL password ({exc}; set the environment variable named by "
                         "password_env, default PBX_CODES_ESL_PASSWORD, or password_file)") from None
    events = tuple(section.get("events", DEFAULT_EVENTS))
    if "ALL" not in events and DECIDING_EVENT not in events:
        events += (DECIDING_EVENT,)  # a leg is decided there: without it no leg would ever be annotated
    return EslClientConfig(
        host=str(section.get("host", "127.0.0.1")),
        port=int(section.get("port", 8021)),
        password=password,
        events=tuple(events),
        event_format=str(section.get("event_format", "json")),
        heartbeat_timeout=float(section.get("heartbeat_timeout", 60)),
        reconnect_min=float(section.get("reconnect_min", 0.5)),
        reconnect_max=float(section.get("reconnect_max", 30)),
        auth_failure_backoff=float(section.get("auth_failure_backoff", 60)),
        probe_interval=float(section.get("probe_interval", 0.5)),
        wanted_events=FreeswitchListener.WANTED_EVENTS,
    )


def section_language(section: Mapping[str, Any], default: str = "en") -> str:
    """The language of ``pbx_reason``: the section's ``language`` (the configuration fills in the top-level one),
    else the older ``hook_lang``, else `default`."""
    lang = str(section.get("language") or section.get("hook_lang") or default)
    if lang not in LANGS:
        raise ValueError(f"freeswitch: language must be one of {list(LANGS)}, got {lang!r}")
    return lang


async def run_freeswitch(config_section: Mapping[str, Any], resolver: Any, bus: Any, *,
                         on_client: Callable[[str, Any], None] | None = None, language: str = "en") -> None:
    """Run the ESL listener and the hook endpoint until cancelled."""
    section = dict(config_section or {})
    lang = section_language(section, language)
    tasks: list[asyncio.Task] = []
    if section.get("esl", True):
        listener = FreeswitchListener(resolver, bus)
        client = EslClient(client_config(section), listener.on_event)
        if on_client is not None:  # e.g. metrics reading the connection state at scrape time
            on_client("freeswitch", client)
        tasks.append(asyncio.create_task(client.run(), name="freeswitch-esl"))
    if section.get("hook", True):
        publish = bus.publish if section.get("hook_publish", False) else None
        server = HookServer(resolver.resolve, host=str(section.get("hook_host", "127.0.0.1")),
                            port=int(section.get("hook_port", DEFAULT_PORT)), lang=lang,
                            publish=publish)
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
