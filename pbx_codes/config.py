"""The one TOML file (`pbx-codes.toml`) that configures every part, read into one frozen record per section.

Each section is a dataclass below; `parse_table` is the one function that reads a table into one: it refuses an
unknown key (naming the file, the section and the key, and suggesting the nearest known key) and a value of the
wrong type, and takes the older spellings of a key (`ALIASES`) for one more release with a warning. The parts read
these records' attributes, never the raw tables.

Conventions: a part that may be switched off has its own table with ``enabled``; a secret is always named by
``secret_env`` (an environment variable) or ``secret_file`` (a file), never written here; times are seconds.
"""
from __future__ import annotations

import collections.abc
import difflib
import logging
import os
import socket
import stat
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from pbx_codes.errors import ConfigError  # re-exported: the configuration's kind of error
from pbx_codes.model import LANGS

log = logging.getLogger("pbx_codes.config")

#: The last release that still reads the older spellings of keys (`ALIASES`), with a warning.
ALIASES_ACCEPTED_UNTIL = "0.2"


def _key(name: str, *, expect: str | None = None, choices: Sequence[str] | None = None,
         minimum: float | None = None, maximum: float | None = None, toml: str | None = None,
         secret: bool = False) -> dict[str, Any]:
    """A field's metadata: how the key is written (`toml`), what its value must be, whether to hide it."""
    return {"doc": name, "expect": expect, "choices": tuple(choices) if choices else None, "min": minimum,
            "max": maximum, "toml": toml, "secret": secret}


def _f(default: Any, doc: str = "", **meta: Any) -> Any:
    return field(default=default, metadata=_key(doc, **meta))


def _table(cls: type, doc: str = "") -> Any:
    return field(default_factory=cls, metadata=_key(doc))


_LANG: dict[str, Any] = {"choices": LANGS}


# --- [asterisk] ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AmiSection:
    """``[asterisk.ami]``: the AMI listener (the live feed, and the write-back by Setvar when `writeback`)."""

    ALIASES: ClassVar[Mapping[str, str]] = {"backoff_initial": "reconnect_min", "backoff_max": "reconnect_max",
                                            "refused_backoff": "auth_failure_backoff"}

    enabled: bool = _f(False, "run the AMI listener")
    host: str = _f("127.0.0.1", "Asterisk's manager address")
    port: int = _f(5038, "manager port", minimum=1, maximum=65535)
    username: str = _f("pbx-codes", "manager user (manager_pbx_codes.conf)")
    secret_env: str = _f("PBX_CODES_AMI_SECRET", "environment variable holding the manager secret")
    secret_file: str | None = _f(None, "or a file whose first line is the secret")
    events: str = _f("on", "the Login's Events= value")
    server_filters: bool = _f(False, "send Filter actions (needs `system` write; the shipped eventfilter does it)")
    fetch_phrases: bool = _f(True, "read the carrier's reason phrase from the channel")
    writeback: bool = _f(False, "write the annotation into the CDR by Setvar")
    report_answered: bool = _f(True, "publish answered legs too (the rates' denominator)")
    ping_interval: float = _f(20.0, "seconds between pings", minimum=0)
    ping_timeout: float = _f(5.0, "seconds a ping may take before reconnecting", minimum=0)
    action_timeout: float = _f(5.0, "seconds an action may take", minimum=0)
    probe_interval: float = _f(0.5, "between connects while Asterisk refuses them", minimum=0)
    reconnect_min: float = _f(0.5, "wait after a session that worked; doubles for a server that breaks at once",
                              minimum=0)
    reconnect_max: float = _f(30.0, "longest wait between reconnects", minimum=0)
    auth_failure_backoff: float = _f(60.0, "at least this long after a refused login", minimum=0)


@dataclass(frozen=True, slots=True)
class AgiSection:
    """``[asterisk.agi]``: the FastAGI server the dialplan's hangup handler calls (the CDR write-back)."""

    enabled: bool = _f(True, "run the FastAGI server")
    host: str = _f("127.0.0.1", "listen address (loopback by default)")
    port: int = _f(4573, "listen port", minimum=0, maximum=65535)
    timeout: float = _f(10.0, "seconds a session may last", minimum=0)
    max_bytes: int = _f(255, "bytes of a value written into the CDR (also the AMI write-back's)", minimum=1)
    max_sessions: int = _f(256, "connections holding bytes at once (4x as many open at all)", minimum=1)
    max_session_bytes: int = _f(32768, "bytes one connection may send; a real request is 1-2 KB", minimum=1)


@dataclass(frozen=True, slots=True)
class AsteriskSection:
    """``[asterisk]``: what runs for Asterisk; `language` defaults to the top-level one."""

    language: str | None = _f(None, "language of pbx_reason in Asterisk's CDRs", **_LANG)
    catalog: str | None = _f(None, "catalog of a leg the dialplan names none for (then bindings, default_catalog)")
    ami: AmiSection = _table(AmiSection)
    agi: AgiSection = _table(AgiSection)


# --- [freeswitch] -------------------------------------------------------------------------------------------------

DEFAULT_ESL_EVENTS = ("CHANNEL_CREATE", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "HEARTBEAT", "BACKGROUND_JOB")


@dataclass(frozen=True, slots=True)
class EslSection:
    """``[freeswitch.esl]``: the event-socket listener (the store's live feed)."""

    enabled: bool = _f(True, "run the ESL listener")
    host: str = _f("127.0.0.1", "FreeSWITCH's event socket address")
    port: int = _f(8021, "event socket port", minimum=1, maximum=65535)
    secret_env: str = _f("PBX_CODES_ESL_PASSWORD", "environment variable holding the event socket password")
    secret_file: str | None = _f(None, "or a file whose first line is the password")
    events: tuple[str, ...] = _f(DEFAULT_ESL_EVENTS, "events to subscribe (CHANNEL_HANGUP_COMPLETE is always added)")
    event_format: str = _f("json", "json | plain", choices=("json", "plain"))
    heartbeat_timeout: float = _f(60.0, "seconds without any frame before reconnecting", minimum=0)
    probe_interval: float = _f(0.5, "between connects while FreeSWITCH refuses them", minimum=0)
    reconnect_min: float = _f(0.5, "wait after a session that worked; doubles for a server that breaks at once",
                              minimum=0)
    reconnect_max: float = _f(30.0, "longest wait between reconnects", minimum=0)
    auth_failure_backoff: float = _f(60.0, "at least this long after a refused password", minimum=0)


@dataclass(frozen=True, slots=True)
class HookSection:
    """``[freeswitch.hook]``: the endpoint the api_hangup_hook script asks before the CDR is written."""

    enabled: bool = _f(True, "run the hangup-hook endpoint (the CDR write-back)")
    host: str = _f("127.0.0.1", "listen address (loopback only)")
    port: int = _f(8089, "listen port", minimum=0, maximum=65535)
    publish: bool = _f(False, "also send hook-annotated legs to the store/console: set it when esl is off")


@dataclass(frozen=True, slots=True)
class FreeswitchSection:
    """``[freeswitch]``: what runs for FreeSWITCH; `language` defaults to the top-level one."""

    ALIASES: ClassVar[Mapping[str, str]] = {
        "host": "esl.host", "port": "esl.port", "password_env": "esl.secret_env",
        "password_file": "esl.secret_file", "events": "esl.events", "event_format": "esl.event_format",
        "heartbeat_timeout": "esl.heartbeat_timeout", "probe_interval": "esl.probe_interval",
        "reconnect_min": "esl.reconnect_min", "reconnect_max": "esl.reconnect_max",
        "auth_failure_backoff": "esl.auth_failure_backoff", "hook_host": "hook.host", "hook_port": "hook.port",
        "hook_publish": "hook.publish", "hook_lang": "language",
    }

    language: str | None = _f(None, "language of pbx_reason written into the CDRs", **_LANG)
    esl: EslSection = _table(EslSection)
    hook: HookSection = _table(HookSection)


# --- [store], [console], [[alerts]], [quality] ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StoreSection:
    """``[store]``: where annotations are kept (SQLite or PostgreSQL)."""

    url: str | None = _f(None, "sqlite:///path or postgresql://user@host/db (password from PGPASSWORD / .pgpass)",
                         secret=True)
    retention_days: float | None = _f(90.0, "rows older than this are deleted, by whole days", minimum=0)
    retention_interval: float = _f(3600.0, "seconds between retention runs", minimum=0)
    batch_size: int = _f(500, "rows per insert", minimum=1)
    flush_ms: int = _f(200, "longest wait before a partial batch is written", minimum=1)
    max_pending: int = _f(50_000, "rows held while the database is away", minimum=1)
    queue_size: int = _f(100_000, "annotations queued from the bus", minimum=1)
    journal: str | None = _f(None, "file that keeps rows over a restart while the database is away")
    retry_max: float = _f(5.0, "longest wait between write retries, seconds", minimum=0)
    connect_timeout: float = _f(5.0, "seconds to reach the database", minimum=0)


@dataclass(frozen=True, slots=True)
class ConsoleSection:
    """``[console]``: the web page; anything but loopback needs an access token."""

    listen: str = _f("127.0.0.1:8088", "HOST:PORT to listen on")
    token_env: str = _f("PBX_CODES_CONSOLE_TOKEN", "environment variable holding the access token")
    token_file: str | None = _f(None, "or a file whose first line is the token")
    show_numbers: bool = _f(False, "numbers are masked to their last 4 digits unless set")
    language: str | None = _f(None, "the page's default language", **_LANG)
    history: int = _f(500, "legs the live feed keeps", minimum=1, maximum=100_000)


@dataclass(frozen=True, slots=True)
class AlertSection:
    """One ``[[alerts]]`` table: a category share/count or a quality measure on a trunk over a window.
    Which keys go together is checked by `pbx_codes.sinks.alerts.parse_rule`."""

    name: str | None = _f(None, "what the alert is called (default: built from the rule)")
    trunk: str | None = _f(None, "trunk name, or * for every trunk")
    category: str | None = _f(None, "failure category, or * for any failure")
    measure: str | None = _f(None, "asr ner ser seer isa pdd_p50_ms pdd_p95_ms srd_p95_ms acd_s")
    catalog: str | None = _f(None, "only legs resolved by this catalog")
    pbx: str | None = _f(None, "asterisk | freeswitch")
    instance: str | None = _f(None, "one agent of a fleet")
    above: float | None = _f(None, "fires above this share (or measure value)")
    below: float | None = _f(None, "fires below this measure value")
    count_at_least: int | None = _f(None, "fires at this many failures")
    window: float | None = _f(None, "seconds counted (default 300)")
    min_calls: int | None = _f(None, "calls needed before it may fire (default 1)")
    clear_below: float | None = _f(None, "clears under this (default 0.8 x the threshold)")
    clear_above: float | None = _f(None, "clears over this (a below rule)")
    hold: float | None = _f(None, "seconds it stays fired at least (default 60)")
    webhook: str | None = _f(None, "http(s) URL posted on fire and clear", secret=True)


@dataclass(frozen=True, slots=True)
class QualityClass:
    """One ``[[quality.class]]``: which categories count as this outcome class, and whether NER counts it."""

    name: str = field(metadata=_key("class name (a word)"))
    categories: tuple[str, ...] = field(metadata=_key("categories of the class"))
    ner: bool = field(metadata=_key("count these calls against the network"))
    source: str = _f("", "where the choice comes from")


_SIP_CODES = "a list of three-digit SIP codes as strings"


@dataclass(frozen=True, slots=True)
class Rfc6076Section:
    """``[quality.rfc6076]``: the response-code sets of SER, SEER and ISA."""

    ser: tuple[str, ...] | None = _f(None, "codes counted as success by SER", expect=_SIP_CODES)
    seer: tuple[str, ...] | None = _f(None, "codes counted as effective by SEER", expect=_SIP_CODES)
    isa: tuple[str, ...] | None = _f(None, "codes counted as ineffective by ISA", expect=_SIP_CODES)


@dataclass(frozen=True, slots=True)
class QualitySection:
    """``[quality]``: outcome classes over the shipped table (`pbx_codes/quality/data/classes.toml`)."""

    classes: tuple[QualityClass, ...] = field(default=(), metadata=_key("classes replacing or adding to the shipped",
                                                                        toml="class"))
    rfc6076: Rfc6076Section | None = _f(None, "response-code sets replacing the shipped")


# --- the file -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Config:
    """Top-level settings plus each part's section (None when the file has no such section)."""

    language: str = _f("en", "every part's language: uk | ru | en", **_LANG)
    #: This agent's name in a fleet sharing one store: stored with each annotation, shown by the console, /metrics,
    #: `report` and `tail`. Default: the host name.
    instance: str = field(default_factory=lambda: default_instance(), metadata=_key("this agent's name in a fleet"))
    default_catalog: str = _f("sip", "catalog for a leg whose trunk has no binding")
    catalog_dirs: tuple[str, ...] = _f((), "directories of your own catalogs, relative to this file")
    bindings: Mapping[str, str] = field(default_factory=dict, metadata=_key("trunk / gateway name -> catalog id"))
    asterisk: AsteriskSection | None = _f(None)
    freeswitch: FreeswitchSection | None = _f(None)
    store: StoreSection | None = _f(None)
    console: ConsoleSection | None = _f(None)
    quality: QualitySection | None = _f(None)
    alerts: tuple[AlertSection, ...] = _f(())
    #: Not keys: where the file was, and what reading it warned about (older spellings).
    path: str | None = field(default=None, metadata={"internal": True})
    warnings: tuple[str, ...] = field(default=(), metadata={"internal": True})


# --- reading tables into sections -----------------------------------------------------------------------------------

def toml_key(f: Field[Any]) -> str:
    """How a dataclass field is written in the file."""
    toml: str | None = f.metadata.get("toml")
    return toml or f.name


def section_keys(cls: type) -> list[str]:
    """The keys a section's table may hold, in declaration order."""
    return [toml_key(f) for f in fields(cls) if not f.metadata.get("internal")]


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_optional(tp: Any) -> tuple[bool, Any]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return True, args[0]
    return False, tp


def _describe(tp: Any) -> str:
    optional, inner = _is_optional(tp)
    if optional:
        return _describe(inner)
    if inner is bool:
        return "true or false"
    if inner is int:
        return "an integer"
    if inner is float:
        return "a number"
    if inner is str:
        return "a string"
    if typing.get_origin(inner) is tuple:
        item = typing.get_args(inner)[0]
        return "a list of tables" if is_dataclass(item) else f"a list of {_describe(item).removeprefix('a ')}s"
    if is_dataclass(inner):
        return "a table"
    return "a table of strings"


def _suggest(key: str, known: Sequence[str], aliases: Mapping[str, str] | None = None, section: str = "") -> str:
    """The nearest known key (or older spelling, with where it lives now), as a hint for a typo."""
    aliases = aliases or {}
    near = difflib.get_close_matches(key, [*known, *aliases], n=1, cutoff=0.6)
    if not near:
        return ""
    if near[0] in aliases:
        head, _, tail = aliases[near[0]].partition(".")
        now = f"[{_join(section, head)}] {tail}" if tail else aliases[near[0]]
        return f" (did you mean {now!r}, formerly {near[0]!r}?)"
    return f" (did you mean {near[0]!r}?)"


def _join(section: str, name: str) -> str:
    return f"{section}.{name}" if section else name


def _place(file: str | None, section: str, label: str | None = None) -> str:
    where = label or (f"[{section}]" if section else "top level")
    return f"{file}: {where}" if file else where


def _warn(message: str, warned: list[str] | None) -> None:
    log.warning("%s", message)
    if warned is not None:
        warned.append(message)


def _apply_aliases(cls: type, raw: dict[str, Any], place: str, section: str, error: type[ConfigError],
                   warned: list[str] | None) -> dict[str, Any]:
    """Older spellings moved to their current key (one more release, with a warning); both at once is refused."""
    aliases: Mapping[str, str] = getattr(cls, "ALIASES", {})
    hints = _hints(cls)
    nested = {f.name for f in fields(cls) if is_dataclass(inner := _is_optional(hints[f.name])[1])
              and "enabled" in {g.name for g in fields(inner)}}
    out = dict(raw)
    for name in nested:  # `esl = false`: the older switch of a part that now has its own table with `enabled`
        value = out.get(name)
        if isinstance(value, bool):
            _warn(f"{place} {name} = {str(value).lower()} is now [{_join(section, name)}] enabled = "
                  f"{str(value).lower()}; the older form is read up to release {ALIASES_ACCEPTED_UNTIL}", warned)
            out[name] = {"enabled": value}
    for old, new in aliases.items():
        if old not in raw:
            continue
        value = out.pop(old)
        head, _, tail = new.partition(".")
        if tail:
            if not isinstance(out.get(head, {}), dict):
                raise error(f"{place} {head} must be a table")
            target = out[head] = dict(out.get(head, {}))  # a copy: the caller's table stays as it was
        else:
            target = out
        leaf = tail or head
        if leaf in target:
            raise error(f"{place} {old} and {new} are the same key: give only {new}")
        shown = f"[{_join(section, head)}] {tail}" if tail else new
        _warn(f"{place} {old} is now {shown}; the older name is read up to release {ALIASES_ACCEPTED_UNTIL}", warned)
        target[leaf] = value
    return out


def _value(tp: Any, value: Any, meta: Mapping[str, Any], place: str, key: str, file: str | None, section: str,
           error: type[ConfigError], warned: list[str] | None) -> Any:
    optional, inner = _is_optional(tp)
    expect = meta.get("expect") or _describe(inner)
    if value is None and optional:  # only from code (TOML has no null): "not set"
        return None

    def wrong() -> ConfigError:
        return error(f"{place} {key} must be {expect}, got {value!r}")

    if isinstance(inner, type) and is_dataclass(inner):
        if not isinstance(value, dict):
            raise wrong()
        return parse_table(inner, value, file=file, section=f"{section}.{key}" if section else key, error=error,
                           warned=warned)
    if typing.get_origin(inner) is tuple:
        item = typing.get_args(inner)[0]
        if not isinstance(value, list):
            raise wrong()
        if isinstance(item, type) and is_dataclass(item):
            if not all(isinstance(v, dict) for v in value):
                raise wrong()
            path = f"{section}.{key}" if section else key
            return tuple(parse_table(item, v, file=file, section=path, label=f"[[{path}]] #{i + 1}", error=error,
                                     warned=warned) for i, v in enumerate(value))
        if not all(isinstance(v, item) and not isinstance(v, bool) for v in value):
            raise wrong()
        return tuple(value)
    if typing.get_origin(inner) in (collections.abc.Mapping, dict):
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise wrong()
        return dict(value)
    if inner is bool:
        ok = isinstance(value, bool)
    elif inner is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif inner is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, inner)
    if not ok:
        raise wrong()
    choices = meta.get("choices")
    if choices and value not in choices:
        raise error(f"{place} {key} must be one of {list(choices)}, got {value!r}")
    low, high = meta.get("min"), meta.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"{low:g}..{high:g}" if low is not None and high is not None else (
            f"at least {low:g}" if low is not None else f"at most {high:g}")
        raise error(f"{place} {key} must be {bounds}, got {value!r}")
    return value


def parse_table(cls: type, raw: object, *, file: str | None = None, section: str = "",
                label: str | None = None, error: type[ConfigError] = ConfigError,
                warned: list[str] | None = None) -> Any:
    """The one reader of a table into its section's dataclass: unknown keys and wrong types are refused with the
    file, the section and the key named (and the nearest known key suggested); older spellings warn."""
    if isinstance(raw, cls):
        return raw
    place = _place(file, section, label)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise error(f"{place} must be a table")
    raw = _apply_aliases(cls, dict(raw), place, section, error, warned)
    hints = _hints(cls)
    by_key = {toml_key(f): f for f in fields(cls) if not f.metadata.get("internal")}
    known = list(by_key)
    for key in raw:
        if key not in by_key:
            hint = _suggest(key, known, getattr(cls, "ALIASES", {}), section)
            raise error(f"{place} unknown key {key!r}{hint}; only {known} are known")
    values: dict[str, Any] = {}
    for key, f in by_key.items():
        meta = f.metadata
        if key not in raw:
            if f.default is MISSING and f.default_factory is MISSING:
                expect = meta.get("expect") or _describe(hints[f.name])
                raise error(f"{place} {key} must be {expect}: missing")
            continue
        values[f.name] = _value(hints[f.name], raw[key], meta, place, key, file, section, error, warned)
    return cls(**values)


def to_table(obj: Any, *, redact: bool = False) -> dict[str, Any]:
    """A section back as its TOML table (keys as written, unset keys left out); `redact` hides secret values."""
    out: dict[str, Any] = {}
    for f in fields(obj):
        meta = f.metadata
        if meta.get("internal"):
            continue
        value = getattr(obj, f.name)
        if value is None:
            continue
        if is_dataclass(value):
            value = to_table(value, redact=redact)
        elif isinstance(value, tuple) and value and is_dataclass(value[0]):
            value = [to_table(v, redact=redact) for v in value]
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        if redact and meta.get("secret") and isinstance(value, str):
            value = redact_value(value)
        out[toml_key(f)] = value
    return out


def redact_value(text: str) -> str:
    """A URL shown without what may be a secret: its password, and for a webhook its path and query."""
    from urllib.parse import urlsplit

    from pbx_codes.store.dsn import safe_url

    if text.startswith(("http://", "https://")):  # a webhook's path or query is often its token
        parts = urlsplit(text)
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            port = ""
        return f"{parts.scheme}://{parts.hostname or ''}{port}/***"
    if "://" in text or "=" in text:
        return safe_url(text)
    return text


_TOP = {"language", "instance", "default_catalog", "catalog_dirs", "bindings"}
_SECTIONS: dict[str, type] = {"asterisk": AsteriskSection, "freeswitch": FreeswitchSection, "store": StoreSection,
                              "console": ConsoleSection, "quality": QualitySection}
#: Sections whose part writes reason texts (pbx_reason, the console's view): they take the top-level language.
_LANGUAGE_SECTIONS = frozenset({"asterisk", "freeswitch", "console"})


def parse_config(raw: Mapping[str, Any], path: str | None = None) -> Config:
    """The whole file: the top level and every section through `parse_table`."""
    file = path or "configuration"
    warned: list[str] = []
    known = [*section_keys(Config)]
    for key in raw:
        if key not in known:
            raise ConfigError(f"{file}: top level unknown key {key!r}{_suggest(key, known)}; only {known} are known")
    top = parse_table(_TopLevel, {k: v for k, v in raw.items() if k in _TOP}, file=file, warned=warned)
    instance = top.instance if top.instance is not None else default_instance()
    if not instance.strip() or len(instance) > 64 or any(not ch.isprintable() for ch in instance):
        raise ConfigError(f"{file}: top level instance must be a name of 1-64 printable characters, got {instance!r}")
    base = Path(path).parent if path else Path(".")
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        if name not in raw:
            continue
        section = parse_table(cls, raw[name], file=file, section=name, warned=warned)
        if name in _LANGUAGE_SECTIONS and section.language is None:
            section = replace(section, language=top.language)  # every part's default; its own overrides it
        sections[name] = section
    alerts = raw.get("alerts", [])
    if not isinstance(alerts, list) or not all(isinstance(a, Mapping) for a in alerts):
        raise ConfigError(f"{file}: [[alerts]] must be tables")
    rules = tuple(parse_table(AlertSection, a, file=file, section="alerts", label=f"[[alerts]] #{i + 1}",
                              warned=warned) for i, a in enumerate(alerts))
    return Config(language=top.language, instance=instance.strip(), default_catalog=top.default_catalog,
                  catalog_dirs=tuple(str(base / d) for d in top.catalog_dirs), bindings=dict(top.bindings),
                  alerts=rules, path=path, warnings=tuple(warned), **sections)


@dataclass(frozen=True, slots=True)
class _TopLevel:
    """The top-level keys, read by the same function as the sections."""

    language: str = _f("en", **_LANG)
    instance: str | None = _f(None)
    default_catalog: str = _f("sip")
    catalog_dirs: tuple[str, ...] = _f(())
    bindings: Mapping[str, str] = field(default_factory=dict, metadata=_key("", expect="a table of trunk = catalog"))


def default_instance() -> str:
    """The host name: what a single PBX's agent is called when the file names no instance."""
    return socket.gethostname() or "localhost"


def read_config_text(path: str | Path) -> str:
    """The file's text; anything but a regular file (a FIFO would block forever, a directory) is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(f"{path}: is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def load_config(path: str | Path | None) -> Config:
    """Read the TOML file, or the defaults when no file is given."""
    if path is None:
        return Config()
    text = read_config_text(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: is not valid TOML: {exc}") from None
    return parse_config(raw, str(path))


def effective_toml(config: Config) -> str:
    """The configuration as it will run, every default filled in, as TOML; secrets never shown (a store URL's
    password, a webhook's path; secret_env/secret_file only name where the secret is)."""
    lines = [f"# effective configuration{f' of {config.path}' if config.path else ''} (secrets redacted)"]
    for key in ("language", "instance", "default_catalog", "catalog_dirs"):
        lines.append(f"{key} = {_toml_value(getattr(config, key))}")
    lines += ["", "[bindings]", *(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in config.bindings.items())]
    for name in _SECTIONS:
        section = getattr(config, name)
        if section is None:
            lines += ["", f"# [{name}] not configured"]
            continue
        _emit_table(lines, name, to_table(section, redact=True))
    for rule in config.alerts:
        lines += ["", "[[alerts]]"]
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in to_table(rule, redact=True).items()]
    return "\n".join(lines) + "\n"


def _emit_table(lines: list[str], name: str, table: Mapping[str, Any]) -> None:
    lines += ["", f"[{name}]"]
    nested = []
    for key, value in table.items():
        if isinstance(value, dict) or (isinstance(value, list) and value and isinstance(value[0], dict)):
            nested.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in nested:
        if isinstance(value, dict):
            _emit_table(lines, f"{name}.{key}", value)
        else:
            for item in value:
                lines += ["", f"[[{name}.{key}]]", *(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in item.items())]


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else _toml_value(key)


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=True)


__all__ = [
    "AgiSection", "AlertSection", "AmiSection", "AsteriskSection", "Config", "ConfigError", "ConsoleSection",
    "EslSection", "FreeswitchSection", "HookSection", "QualityClass", "QualitySection", "Rfc6076Section",
    "StoreSection", "default_instance", "effective_toml", "load_config", "parse_config", "parse_table",
    "read_config_text", "section_keys", "to_table",
]
