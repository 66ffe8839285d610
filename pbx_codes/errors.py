"""The one error hierarchy: every layer raises a kind of `PbxCodesError`; the CLI and `serve` map them once.

Each kind also derives from the built-in exception callers already expect (a bad value is a ``ValueError``, a lost
connection a ``ConnectionError``), so ``except ValueError`` in a caller keeps working while new code catches by kind.
A message never quotes a secret: the layer that raises redacts first (see ``pbx_codes.store.dsn``).
"""
from __future__ import annotations


class PbxCodesError(Exception):
    """Base of every error pbx-codes raises on purpose. Its message is one line meant for the operator."""


class ConfigError(PbxCodesError, ValueError):
    """A configuration file, section, key or value is wrong (found at start-up: `serve` exits 2)."""


class CatalogError(PbxCodesError, ValueError):
    """A catalog file is refused; the message names the file, entry and field."""


class ProtocolError(PbxCodesError, ValueError):
    """The peer sent bytes the protocol does not allow (AMI, ESL, AGI, the hook's HTTP), or broke a bound."""


class InjectionError(PbxCodesError, ValueError):
    """A value would add a line or a separator to a command (CR, LF, NUL): refused, never sent."""


class AuthenticationError(PbxCodesError, ConnectionError):
    """The PBX refused our login or password: retried patiently, never hammered."""


class PbxConnectionError(PbxCodesError, ConnectionError):
    """The PBX is unreachable or the connection was lost: retried quickly."""


class CommandError(PbxCodesError, RuntimeError):
    """The PBX answered a command with an error (an ESL ``-ERR`` reply): the connection itself is fine."""


class StoreError(PbxCodesError, RuntimeError):
    """The store's database failed; the message has passed through the password redactor."""


class InputError(PbxCodesError, ValueError):
    """A file or argument given to a command cannot be used (enrich, backfill, replay, report)."""


__all__ = [
    "AuthenticationError", "CatalogError", "CommandError", "ConfigError", "InjectionError", "InputError",
    "PbxCodesError", "PbxConnectionError", "ProtocolError", "StoreError",
]
