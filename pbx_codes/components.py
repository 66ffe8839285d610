"""Starting the sinks for `serve`: the store, metrics, alerts and the console, each only when configured."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pbx_codes.app import App

log = logging.getLogger("pbx_codes.serve")


async def start_sinks(app: "App", store_url: str | None, console: str | None) -> None:
    """Store, metrics, alerts and console; wired as each part lands."""
    return None
