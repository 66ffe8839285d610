"""The one way tests start headless Chromium (Debian's package): where it is and the flags that keep it quiet."""
from __future__ import annotations

from support.paths import REPO

CHROMIUM = "/usr/bin/chromium"
#: Headless, no sandbox (root in CI), and nothing that reaches for the network on its own.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Screenshots the browser tests leave for a person to look at.
ARTIFACTS = REPO / "artifacts" / "console"
