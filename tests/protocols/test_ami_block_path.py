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


def test_command_output_amid_a_read_goes_to_the_frame_loop_from_its_first_frame_on() -> None:
    data = CAPTURES[0].read_bytes()
    banner, body = data.split(b"\r\n", 1)
    cut = body.index(b"\r\n\r\n", len(body) // 2) + 4
    stream = banner + b"\r\n" + body[:cut] + FOLLOWS + body[cut:]
    whole, by_frame = AmiParser(WANTED), AmiParser(WANTED)
    in_one_read = messages(whole, stream)
    frame_by_frame = [m for frame in stream.split(b"\r\n\r\n") for m in messages(by_frame, frame + b"\r\n\r\n")]
    at = [i for i, m in enumerate(in_one_read) if m[0] == "Response" and "Follows" in m[1]]
    assert len(at) == 1 and "('body', '', 'more')" in in_one_read[at[0]][1]  # its blank line is part of the body
    assert {m[0] for m in in_one_read[:at[0]]} & WANTED and {m[0] for m in in_one_read[at[0]:]} & WANTED
    assert in_one_read == frame_by_frame
    assert (whole.frames, whole.skipped, whole.unknown) == (by_frame.frames, by_frame.skipped, by_frame.unknown)
