"""ESL parsing throughput: pbx_codes.protocols.esl vs a reference parser, measured in the same run.

Reference: the ESL reader of the `genesis` package (ESLReaderFSM: header block, Content-Length body, URL-decoded
plain events), fed the same bytes frame by frame as its asyncio reader would, plus ``json.loads`` of JSON event
bodies so both sides do the same work (genesis leaves JSON bodies as text). If genesis is not installed, a
straightforward reference implementation below stands in and the output says so.

Both sides get the same corpus (every recorded connection with ``event plain ALL`` / ``event json ALL``), ours fed
in 64 KiB reads like the live client. Events/s is always *events in the stream* / time to get through it. Two cases:

(a) every event decoded (``wanted_events=None``): the same work on both sides;
(b) the listener's case: the parser built with `FreeswitchListener.WANTED_EVENTS` skips the rest unread. The
    reference has no way to skip an event before parsing it, so it parses every frame and the listener drops the
    unwanted names afterwards: that is what a listener built on it does.

    python3 bench/bench_esl.py [--repeat N]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from urllib.parse import unquote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pbx_codes.adapters.esl_listener import FreeswitchListener  # noqa: E402
from pbx_codes.protocols.esl import EslParser, Event  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "freeswitch"


def _frames(data: bytes):
    """Split a capture the way a line-reading client does: header block, then Content-Length bytes."""
    pos = 0
    while True:
        end = data.find(b"\n\n", pos)
        if end < 0:
            return
        head = data[pos:end + 2]
        pos = end + 2
        length = 0
        for line in head.split(b"\n"):
            if line.startswith(b"Content-Length:"):
                length = int(line.split(b":", 1)[1])
        yield head, data[pos:pos + length]
        pos += length


def genesis_reference():
    try:
        from genesis.protocol.reader_fsm import ESLReaderFSM
    except ImportError:
        return None

    def parse(data: bytes) -> int:
        fsm = ESLReaderFSM()
        count = 0
        for head, body in _frames(data):
            events, length = fsm.process_headers(head.decode("utf-8"))
            if length:
                events = fsm.process_body(body)
            for ev in events:
                if ev.get("Content-Type") == "text/event-json" and ev.body:
                    json.loads(ev.body)
                if "Event-Name" in ev or ev.get("Content-Type", "").startswith("text/event"):
                    count += 1
        return count
    return parse


def simple_reference(data: bytes) -> int:
    """A plain reference ESL reader: decode, split lines, unquote every value, json.loads JSON bodies."""
    count = 0
    for head, body in _frames(data):
        headers = {}
        for line in head.decode("utf-8").splitlines():
            if ": " in line:
                k, v = line.split(": ", 1)
                headers[unquote(k)] = unquote(v)
        ctype = headers.get("Content-Type")
        if ctype == "text/event-plain":
            event = {}
            for line in body.decode("utf-8").splitlines():
                if ": " in line:
                    k, v = line.split(": ", 1)
                    event[unquote(k)] = unquote(v)
            count += 1
        elif ctype == "text/event-json":
            json.loads(body.decode("utf-8"))
            count += 1
    return count


READ_SIZE = 65536


def ours(data: bytes, wanted: frozenset[str] | None = None) -> int:
    parser = EslParser(wanted)
    count = 0
    for at in range(0, len(data), READ_SIZE):
        for frame in parser.feed(data[at:at + READ_SIZE]):
            if isinstance(frame, Event):
                count += 1
    return count + parser.skipped


def ours_listener(data: bytes) -> int:
    return ours(data, FreeswitchListener.WANTED_EVENTS)


def wanted_share(corpus: list[bytes]) -> tuple[int, int]:
    wanted = FreeswitchListener.WANTED_EVENTS
    parser_counts = [0, 0]
    for data in corpus:
        parser = EslParser(wanted)
        parser_counts[0] += sum(1 for f in parser.feed(data) if isinstance(f, Event))
        parser_counts[1] += parser.skipped
    return parser_counts[0], parser_counts[0] + parser_counts[1]


def measure(fn, corpus: list[bytes], repeat: int) -> tuple[float, int]:
    best = float("inf")
    events = 0
    for _ in range(repeat):
        start = time.perf_counter()
        events = sum(fn(d) for d in corpus)
        best = min(best, time.perf_counter() - start)
    return events / best, events


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    reference = genesis_reference()
    ref_name = "genesis ESLReaderFSM (+json.loads)"
    if reference is None:
        reference, ref_name = simple_reference, "simple reference reader (genesis not installed)"
    print(f"reference: {ref_name}; best of {args.repeat}; events/s = events in the stream / time")
    for kind in ("plain", "json"):
        corpus = [p.read_bytes() for p in sorted(FIXTURES.glob(f"*.{kind}.esl.txt"))]
        ref_rate, n_ref = measure(reference, corpus, args.repeat)
        all_rate, n_all = measure(ours, corpus, args.repeat)
        listener_rate, n_listener = measure(ours_listener, corpus, args.repeat)
        simple_rate, _ = measure(simple_reference, corpus, args.repeat)
        assert n_ref == n_all == n_listener, (n_ref, n_all, n_listener)
        decoded, total = wanted_share(corpus)
        print(f"{kind}: {total} events, reference {ref_rate:9,.0f} ev/s (simple reader {simple_rate:9,.0f})")
        print(f"  (a) all decoded        pbx_codes {all_rate:9,.0f} ev/s -> {all_rate / ref_rate:5.2f}x reference")
        print(f"  (b) listener's events  pbx_codes {listener_rate:9,.0f} ev/s -> {listener_rate / ref_rate:5.2f}x "
              f"reference ({decoded} of {total} events decoded, the rest skipped unread)")


if __name__ == "__main__":
    main()
