"""Channel names -> the trunk a leg went through, for both PBXs: the one place that knows how they name channels.

Asterisk: ``PJSIP/<endpoint>-<8 hex digits>`` (``;1``/``;2`` after the digits on Local channels, which are no trunk).
FreeSWITCH: ``sofia/gateway/<gateway>/<number>``; a bridge's dial string names the gateway the same way.
"""
from __future__ import annotations

import re

#: What Asterisk puts after a channel's name (after a ``-``): 8 hex digits, ``;1``/``;2`` on Local channels.
ASTERISK_SUFFIX = r"[0-9a-fA-F]{8}(?:;\d)?"
#: The suffix alone, as text and as bytes (readers that never decode a field): ``.fullmatch(name, pos)``.
ASTERISK_SUFFIX_TEXT = re.compile(ASTERISK_SUFFIX)
ASTERISK_SUFFIX_BYTES = re.compile(ASTERISK_SUFFIX.encode("ascii"))
_ASTERISK_CHANNEL_END = re.compile(f"-{ASTERISK_SUFFIX}$")

#: A FreeSWITCH gateway channel's name, and a gateway inside a bridge's dial string.
GATEWAY_CHANNEL = re.compile(r"^sofia/gateway/([^/]+)/")
GATEWAY_IN_DIAL = re.compile(r"sofia/gateway/([^/\s|,\]{}]+)/")


def asterisk_trunk(channel: str | None) -> str | None:
    """``PJSIP/trunk-00000009`` -> ``trunk``: the endpoint a dialed channel went out through."""
    if not channel or "/" not in channel:
        return None
    tech, _, rest = channel.partition("/")
    if tech == "Local":
        return None
    name = _ASTERISK_CHANNEL_END.sub("", rest)
    return name or None


def freeswitch_gateway(channel: str | None) -> str | None:
    """``sofia/gateway/gw1/409`` -> ``gw1``; None for any other name."""
    match = GATEWAY_CHANNEL.match(channel or "")
    return match.group(1) if match else None


def trunk_of_channel(channel: str | None) -> str | None:
    """The trunk of a dialed channel named by either PBX (a CDR column does not say which wrote it)."""
    if not channel:
        return None
    if channel.startswith("sofia/"):
        return freeswitch_gateway(channel)
    return asterisk_trunk(channel)


__all__ = ["ASTERISK_SUFFIX", "ASTERISK_SUFFIX_BYTES", "ASTERISK_SUFFIX_TEXT", "GATEWAY_CHANNEL", "GATEWAY_IN_DIAL",
           "asterisk_trunk", "freeswitch_gateway", "trunk_of_channel"]
