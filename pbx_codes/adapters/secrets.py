"""Reading a secret (AMI secret, ESL password, console token) from the environment or a file, never from the
configuration itself.

Errors name where the secret was looked for, never what it is; nothing here logs.
"""
from __future__ import annotations

import os
from pathlib import Path

from pbx_codes.errors import ConfigError


class SecretError(ConfigError):
    """No secret where the configuration said it would be."""


def read_secret(env_name: str | None, file_path: str | os.PathLike[str] | None) -> str:
    """The secret from environment variable `env_name` if set and non-empty, else the first line of `file_path`."""
    if env_name:
        value = os.environ.get(env_name)
        if value:
            return value.strip("\r\n")
    if file_path:
        try:
            text = Path(file_path).read_text(encoding="utf-8")
        except OSError as exc:
            raise SecretError(f"secret file {str(file_path)!r} cannot be read: {exc.strerror or type(exc).__name__}"
                              ) from None
        value = text.splitlines()[0].strip() if text.strip() else ""
        if value:
            return value
        raise SecretError(f"secret file {str(file_path)!r} is empty")
    where = f"environment variable {env_name!r}" if env_name else "no environment variable"
    raise SecretError(f"no secret: {where} is unset and no secret file is configured")


__all__ = ["SecretError", "read_secret"]
