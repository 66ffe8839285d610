"""The `[console]` section of pbx-codes.toml read into one frozen record, with the token rule applied at start.

The console shows who called whom and why it failed: on loopback only the local machine can reach it, anywhere
else it must not start without an access token.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pbx_codes.adapters.secrets import SecretError, read_secret
from pbx_codes.config import ConfigError, ConsoleSection, parse_table
from pbx_codes.model import LANGS

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8088
DEFAULT_TOKEN_ENV = "PBX_CODES_CONSOLE_TOKEN"


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """Where the console listens, how it checks access and what it shows. `token` is None only on loopback."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    show_numbers: bool = False
    language: str = "en"
    history: int = 500

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def __repr__(self) -> str:  # never print the token
        return (f"ConsoleSettings(host={self.host!r}, port={self.port}, token={'set' if self.token else None}, "
                f"show_numbers={self.show_numbers}, language={self.language!r}, history={self.history})")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`: addresses no other machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT`, `[V6]:PORT` or `HOST` (default port) -> (host, port)."""
    value = value.strip()
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(f"[console] listen: cannot read {value!r} as HOST:PORT")
    elif value.count(":") == 1:
        host, port_text = value.split(":")
    else:
        host, port_text = value, ""
    if not host:
        raise ConfigError(f"[console] listen: no host in {value!r}")
    if not port_text:
        return host, DEFAULT_PORT
    if not (port_text.isascii() and port_text.isdigit()) or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"[console] listen: port must be 0..65535, got {port_text!r}")
    return host, int(port_text)


def parse_console_settings(section: ConsoleSection | Mapping[str, Any] | None, language: str = "en",
                           listen: str | None = None) -> ConsoleSettings:
    """The ``[console]`` section (a table is read through `pbx_codes.config`); `listen` (the `serve --console`
    option) overrides the file. Reads the token now."""
    console: ConsoleSection = parse_table(ConsoleSection, section, section="console")
    host, port = parse_listen(listen or console.listen)
    lang = console.language or language
    if lang not in LANGS:
        raise ConfigError(f"[console] language must be one of {list(LANGS)}, got {lang!r}")
    show_numbers, history, token_file = console.show_numbers, console.history, console.token_file
    try:
        token: str | None = read_secret(console.token_env, token_file)
    except SecretError as exc:
        if token_file:
            raise ConfigError(f"[console] access token: {exc}") from None
        if not is_loopback(host):
            raise ConfigError(f"[console] listening on {host} (not loopback) needs an access token: {exc}") from None
        token = None
    return ConsoleSettings(host=host, port=port, token=token, show_numbers=show_numbers, language=lang,
                           history=history)


__all__ = ["ConsoleSettings", "DEFAULT_PORT", "DEFAULT_TOKEN_ENV", "is_loopback", "parse_console_settings",
           "parse_listen"]
