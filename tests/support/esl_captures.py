"""Real FreeSWITCH captures with the carrier's phrase replaced, every frame's Content-Length kept right.

The recorded carriers answered in English; carriers in Ukraine and Russia often do not. FreeSWITCH writes a
channel variable's text into a JSON event as it is (UTF-8), so a capture with a Cyrillic phrase is the same bytes
with that phrase and longer bodies: the framing below is independent of the parser under test.
"""
from __future__ import annotations

import re
from urllib.parse import quote

#: 2-, 3- and 4-byte UTF-8 characters, as a Ukrainian carrier might answer (plus a symbol some add).
CYRILLIC_PHRASE = "Недостатньо коштів на рахунку — ☎ 📵"

_JSON_PHRASE = re.compile(rb'("variable_sip_invite_failure_phrase":")([^"]*)(")')
_PLAIN_PHRASE = re.compile(rb"^(variable_sip_invite_failure_phrase: )(.*)$", re.M)


def with_carrier_phrase(capture: bytes, phrase: str) -> bytes:
    """`capture` with every event's ``sip_invite_failure_phrase`` set to `phrase` (raw UTF-8 in JSON events,
    URL-encoded in plain ones, as FreeSWITCH writes them) and each changed frame's Content-Length recomputed."""
    raw = phrase.encode("utf-8")
    out: list[bytes] = []
    at = 0
    while at < len(capture):
        end = capture.index(b"\n\n", at) + 2
        head = capture[at:end]
        length = re.search(rb"^Content-Length: (\d+)$", head, re.M)
        body = capture[end:end + int(length.group(1))] if length else b""
        at = end + len(body)
        if b"text/event-json" in head:
            body = _JSON_PHRASE.sub(lambda m: m.group(1) + raw + m.group(3), body)
        elif b"text/event-plain" in head:
            body = _PLAIN_PHRASE.sub(lambda m: m.group(1) + quote(phrase).encode("ascii"), body)
        if length:
            head = head[:length.start(1)] + str(len(body)).encode() + head[length.end(1):]
        out.append(head + body)
    return b"".join(out)


def continuation_bytes(data: bytes) -> list[int]:
    """Offsets of UTF-8 continuation bytes: a cut there falls inside a multibyte character."""
    return [i for i, byte in enumerate(data) if 0x80 <= byte < 0xC0]


__all__ = ["CYRILLIC_PHRASE", "continuation_bytes", "with_carrier_phrase"]
