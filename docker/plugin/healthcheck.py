"""The plugin image's health check: the console answers /healthz (with the token, since it listens off loopback)."""
from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

TOKEN_FILE = Path(os.environ.get("PBX_CODES_CONSOLE_TOKEN_FILE", "/run/secrets/console_token"))
URL = os.environ.get("PBX_CODES_HEALTH_URL", "http://127.0.0.1:8088/healthz")


def main() -> int:
    """0 when the console says ok; 1 otherwise (the reason, never the token, on stderr)."""
    headers = {}
    try:
        headers["Authorization"] = "Bearer " + TOKEN_FILE.read_text(encoding="utf-8").splitlines()[0].strip()
    except (OSError, IndexError):
        pass  # a loopback-only console needs no token
    request = urllib.request.Request(URL, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=3) as response:  # a fixed loopback URL
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"console health check failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
