"""The live feed's encoding: batched hangups travel in messages of bounded size, in order."""
from __future__ import annotations

import json

from pbx_codes.console.feed import MESSAGE_HANGUPS, encode_events


def _messages(body: bytes) -> list[tuple[str, object]]:
    out = []
    for block in body.decode().split("\n\n"):
        if block:
            lines = dict(line.split(": ", 1) for line in block.split("\n"))
            out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_a_long_run_of_hangups_is_split_into_messages_of_bounded_size_in_order() -> None:
    count = MESSAGE_HANGUPS * 2 + 7
    items = [("hangup", {"uniqueid": f"leg-{i}"}) for i in range(count)]
    messages = _messages(encode_events(items, batched=True))
    assert [name for name, _ in messages] == ["hangups"] * 3
    assert [len(data) for _, data in messages] == [MESSAGE_HANGUPS, MESSAGE_HANGUPS, 7]  # type: ignore[arg-type]
    assert [h["uniqueid"] for _, data in messages for h in data] == [f"leg-{i}" for i in range(count)]  # type: ignore


def test_an_alert_between_hangups_keeps_its_place() -> None:
    items = [("hangup", {"uniqueid": "a"}), ("alert", {"name": "asr"}), ("hangup", {"uniqueid": "b"})]
    assert _messages(encode_events(items, batched=True)) == [
        ("hangups", [{"uniqueid": "a"}]), ("alert", {"name": "asr"}), ("hangups", [{"uniqueid": "b"}])]
    assert [name for name, _ in _messages(encode_events(items, batched=False))] == ["hangup", "alert", "hangup"]
