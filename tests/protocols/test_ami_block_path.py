"""The AMI parser's two ways through a read give the same messages: whole ASCII frames decoded and split in one go
(the usual read), and the frame-by-frame loop (a read with command output or non-ASCII text in it)."""
from __future__ import annotations

from pathlib import Path

import pytest

from pbx_codes.protocols import ProtocolError
from pbx_codes.protocols.ami import AmiParser, Event
from support.paths import FIXTURES

CAPTURES = sorted((FIXTURES / "asterisk").glob("*.ami.txt"))
# A complete command output frame: a read holding one is taken by the frame loop.
FOLLOWS = b"Response: Follows\r\nPrivilege: Command\r\nActionID: 1\r\nbody\r\n\r\nmore\r\n--END COMMAND--\r\n\r\n"
WANTED = {"DialBegin", "DialEnd", "Hangup", "HangupRequest"}


def messages(parser: AmiParser, data: bytes) -> list[tuple[str, ...]]:
    return [(m.name, m.raw) if isinstance(m, Event) else (type(m).__name__, repr(m)) for m in parser.feed(data)]


@pytest.mark.parametrize("wanted", [None, WANTED], ids=["every event", "wanted events"])
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name.split(".")[0])
def test_block_path_and_frame_loop_agree(path: Path, wanted) -> None:
    data = path.read_bytes()
    banner, body = data.split(b"\r\n", 1)
    # Stray line endings between frames are part of what both ways must skip alike.
    body = body.replace(b"\r\n\r\nEvent: Hangup\r\n", b"\r\n\r\n\r\n\r\nEvent: Hangup\r\n")
    block, loop = AmiParser(wanted), AmiParser(wanted)
    assert body.isascii()
    by_block = messages(block, banner + b"\r\n" + body)
    by_loop = messages(loop, banner + b"\r\n" + FOLLOWS + body)
    assert by_loop[1][0] == "Response" and by_loop[:1] + by_loop[2:] == by_block
    assert (block.frames, block.skipped, block.unknown) == (loop.frames - 1, loop.skipped, loop.unknown)
    assert block.buffered == loop.buffered == 0


@pytest.mark.parametrize("prefix", [b"", FOLLOWS], ids=["block path", "frame loop"])
def test_a_frame_or_a_line_over_its_bound_is_refused_either_way(prefix: bytes) -> None:
    long_line = b"Event: Hangup\r\nUniqueid: " + b"1" * 300 + b"\r\n\r\n"
    with pytest.raises(ProtocolError, match="line"):
        AmiParser(max_line=200).feed(b"Asterisk Call Manager/9.0.0\r\n" + prefix + long_line)
    big_frame = b"Event: Hangup\r\n" + b"Key: value\r\n" * 40 + b"\r\n"
    with pytest.raises(ProtocolError, match="frame"):
        AmiParser(max_frame=300, max_line=100).feed(b"Asterisk Call Manager/9.0.0\r\n" + prefix + big_frame)
