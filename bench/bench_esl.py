"""ESL parsing throughput: pbx_codes.protocols.esl vs a reference parser, measured in the same run.

Reference: the ESL reader of the `genesis` package (ESLReaderFSM: header block, Content-Length body, URL-decoded
plain events), fed the same bytes frame by frame as its asyncio reader would, plus ``json.loads`` of JSON event
bodies so both sides do the same work (genesis leaves JSON bodies as text). If genesis is not installed, a
straightforward reference implementation below stands in and the output says so.

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

from pbx_codes.protocols.esl import EslParser, Event  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "freeswitch"


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


def ours(data: bytes) -> int:
    return sum(1 for f in EslParser().feed(data) if isinstance(f, Event))


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
    for kind in ("plain", "json"):
        corpus = [p.read_bytes() for p in sorted(FIXTURES.glob(f"*.{kind}.esl.txt"))]
        ours_rate, n1 = measure(ours, corpus, args.repeat)
        ref_rate, n2 = measure(reference, corpus, args.repeat)
        simple_rate, _ = measure(simple_reference, corpus, args.repeat)
        print(f"{kind:5s}: pbx_codes {ours_rate:10,.0f} ev/s ({n1} events) | {ref_name} {ref_rate:10,.0f} ev/s "
              f"({n2}) -> {ours_rate / ref_rate:5.2f}x | simple reference {simple_rate:10,.0f} ev/s -> "
              f"{ours_rate / simple_rate:5.2f}x")


if __name__ == "__main__":
    main()
