"""The one TOML file (`pbx-codes.toml`) that configures every part, read into plain records.

Secrets never live here: the file names an environment variable or a secret file, and the adapters read them.
"""
from __future__ import annotations

import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from pbx_codes.errors import ConfigError  # re-exported: the configuration's kind of error
from pbx_codes.model import LANGS


@dataclass(frozen=True, slots=True)
class Config:
    """Top-level settings plus each part's own section, passed as-is to that part."""

    language: str = "en"
    #: This agent's name in a fleet sharing one store: stored with each annotation, shown by the console, /metrics,
    #: `report` and `tail`. Default: the host name.
    instance: str = field(default_factory=lambda: default_instance())
    default_catalog: str = "sip"
    catalog_dirs: tuple[str, ...] = ()
    bindings: Mapping[str, str] = field(default_factory=dict)
    asterisk: Mapping[str, Any] | None = None
    freeswitch: Mapping[str, Any] | None = None
    store: Mapping[str, Any] | None = None
    console: Mapping[str, Any] | None = None
    #: Outcome classes for the trunk quality measures, over the shipped table (`pbx_codes.quality.classes`).
    quality: Mapping[str, Any] | None = None
    alerts: tuple[Mapping[str, Any], ...] = ()
    path: str | None = None


#: Sections whose part writes reason texts (pbx_reason, the console's view): they take the top-level language.
_LANGUAGE_SECTIONS = frozenset({"asterisk", "freeswitch", "console"})

_KNOWN = {"instance", "language", "default_catalog", "catalog_dirs", "bindings", "asterisk", "freeswitch", "store", "console",
          "alerts", "quality"}


def parse_config(raw: Mapping[str, Any], path: str | None = None) -> Config:
    """Check the top level and build a Config; each part validates its own section when it starts."""
    where = path or "configuration"
    unknown = set(raw) - _KNOWN
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
    language = raw.get("language", "en")
    if language not in LANGS:
        raise ConfigError(f"{where}: language must be one of {list(LANGS)}, got {language!r}")
    instance = raw.get("instance", None)
    if instance is None:
        instance = default_instance()
    if not isinstance(instance, str) or not instance.strip() or len(instance) > 64 \
            or any(not ch.isprintable() for ch in instance):
        raise ConfigError(f"{where}: instance must be a name of 1-64 printable characters, got {instance!r}")
    bindings = raw.get("bindings", {})
    if not isinstance(bindings, dict) or not all(isinstance(v, str) for v in bindings.values()):
        raise ConfigError(f"{where}: [bindings] must map trunk names to catalog ids")
    dirs = raw.get("catalog_dirs", [])
    if not isinstance(dirs, list) or not all(isinstance(d, str) for d in dirs):
        raise ConfigError(f"{where}: catalog_dirs must be a list of directories")
    base = Path(path).parent if path else Path(".")
    sections = {}
    for name in ("asterisk", "freeswitch", "store", "console", "quality"):
        value = raw.get(name)
        if value is not None and not isinstance(value, dict):
            raise ConfigError(f"{where}: [{name}] must be a table")
        if value is not None and name in _LANGUAGE_SECTIONS:
            # The top-level language is every part's default; a section's own `language` overrides it.
            own = value.get("language", language)
            if own not in LANGS:
                raise ConfigError(f"{where}: [{name}] language must be one of {list(LANGS)}, got {own!r}")
            value = {**value, "language": own}
        sections[name] = value
    alerts = raw.get("alerts", [])
    if not isinstance(alerts, list) or not all(isinstance(a, dict) for a in alerts):
        raise ConfigError(f"{where}: [[alerts]] must be tables")
    return Config(
        language=language, instance=instance.strip(), default_catalog=str(raw.get("default_catalog", "sip")),
        catalog_dirs=tuple(str(base / d) for d in dirs), bindings=dict(bindings), alerts=tuple(alerts),
        path=path, **sections,
    )


def default_instance() -> str:
    """The host name: what a single PBX's agent is called when the file names no instance."""
    return socket.gethostname() or "localhost"


def load_config(path: str | Path | None) -> Config:
    """Read the TOML file, or the defaults when no file is given."""
    if path is None:
        return Config()
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: is not valid TOML: {exc}") from None
    return parse_config(raw, str(path))
