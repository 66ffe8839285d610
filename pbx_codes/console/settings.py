"""The `[console]` section of pbx-codes.toml read into one frozen record, with the token rule applied at start.

The console shows who called whom and why it failed: on loopback only the local machine can reach it, anywhere
else it must not start without an access token.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Mapping

from pbx_codes.adapters.secrets import SecretError, read_secret
from pbx_codes.config import ConfigError
from pbx_codes.model import LANGS

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8088
DEFAULT_TOKEN_ENV = "PBX_CODES_CONSOLE_TOKEN"
_KEYS = {"listen", "token_env", "token_file", "show_numbers", "language", "history"}


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


def parse_console_settings(section: Mapping[str, Any] | None, language: str = "en",
                           listen: str | None = None) -> ConsoleSettings:
    """Validate the section; `listen` (the `serve --console` option) overrides the file. Reads the token now."""
    section = dict(section or {})
    unknown = set(section) - _KEYS
    if unknown:
        raise ConfigError(f"[console]: unknown key(s) {sorted(unknown)}; known: {sorted(_KEYS)}")
    host, port = parse_listen(listen or str(section.get("listen", f"{DEFAULT_HOST}:{DEFAULT_PORT}")))
    lang = section.get("language", language)
    if lang not in LANGS:
        raise ConfigError(f"[console] language must be one of {list(LANGS)}, got {lang!r}")
    show_numbers = section.get("show_numbers", False)
    if not isinstance(show_numbers, bool):
        raise ConfigError("[console] show_numbers must be true or false")
    history = section.get("history", 500)
    if not isinstance(history, int) or isinstance(history, bool) or not 1 <= history <= 100_000:
        raise ConfigError("[console] history must be an integer 1..100000")
    token_env = section.get("token_env", DEFAULT_TOKEN_ENV)
    token_file = section.get("token_file")
    for key, value in (("token_env", token_env), ("token_file", token_file)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"[console] {key} must be a string")
    try:
        token: str | None = read_secret(token_env, token_file)
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
