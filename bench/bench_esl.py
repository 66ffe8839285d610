"""ESL parsing throughput: pbx_codes.protocols.esl vs a reference parser, measured in the same run.

Reference: the ESL reader of the `genesis` package (ESLReaderFSM: header block, Content-Length body, URL-decoded
plain events), fed the same bytes frame by frame as its asyncio reader would, plus ``json.loads`` of JSON event
bodies so both sides do the same work (genesis leaves JSON bodies as text). genesis lives in a virtualenv of its
own, ``bench/.venv-genesis`` (``sh bench/setup_genesis.sh``; same Python as the project's), and is imported from it
into this process, so both sides run in one interpreter. Without it the script stops and says how to set it up;
``--simple`` measures against the straightforward reader below instead (and says so).

The runs take turns within each round, timed in process CPU time, and the best round of each counts: load that
comes and goes on a shared machine hits the reference and ours alike. Ratios are printed.

Both sides get the same corpus (every recorded connection with ``event plain ALL`` / ``event json ALL``), ours fed
in 64 KiB reads like the live client. Events/s is always *events in the stream* / time to get through it. Two cases:

(a) every event decoded (``wanted_events=None``): the same work on both sides;
(b) the listener's case: the parser built with `FreeswitchListener.WANTED_EVENTS` skips the rest unread. The
    reference has no way to skip an event before parsing it, so it parses every frame and the listener drops the
    unwanted names afterwards: that is what a listener built on it does.

    sh bench/setup_genesis.sh   # once
    python3 bench/bench_esl.py [--repeat N] [--simple]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from urllib.parse import unquote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pbx_codes.protocols.esl import EslParser, Event
from pbx_codes.runtime.esl_listener import FreeswitchListener

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "freeswitch"
GENESIS_VENV = Path(__file__).resolve().parent / ".venv-genesis"


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
    """genesis' reader, imported from bench/.venv-genesis (appended to the path: the project's packages win)."""
    site = sorted(GENESIS_VENV.glob(f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"))
    if site and str(site[0]) not in sys.path:
        sys.path.append(str(site[0]))
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


def interleaved(repeat: int, runs: dict[str, object], corpus: list[bytes]) -> dict[str, tuple[float, int]]:
    """Events/s of each run over the corpus: best of `repeat` rounds, the runs taking turns within each round."""
    best = {name: (float("inf"), 0) for name in runs}
    for _ in range(repeat):
        for name, fn in runs.items():
            start = time.process_time()
            events = sum(fn(d) for d in corpus)  # type: ignore[operator]
            elapsed = time.process_time() - start
            if elapsed < best[name][0]:
                best[name] = (elapsed, events)
    return {name: (events / elapsed, events) for name, (elapsed, events) in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--simple", action="store_true", help="measure against the simple reader, not genesis")
    args = parser.parse_args()
    if args.simple:
        reference, ref_name = simple_reference, "simple reference reader (not genesis)"
    else:
        reference, ref_name = genesis_reference(), "genesis ESLReaderFSM (+json.loads)"
        if reference is None:
            sys.exit(f"genesis is not installed in {GENESIS_VENV}: run `sh bench/setup_genesis.sh` "
                     "(or pass --simple to measure against the simple reader)")
    print(f"reference: {ref_name}; interleaved, best of {args.repeat} (process time); "
          "events/s = events in the stream / time")
    for kind in ("plain", "json"):
        corpus = [p.read_bytes() for p in sorted(FIXTURES.glob(f"*.{kind}.esl.txt"))]
        rates = interleaved(args.repeat, {"reference": reference, "all": ours, "listener": ours_listener,
                                          "simple": simple_reference}, corpus)
        (ref_rate, n_ref), (all_rate, n_all), (listener_rate, n_listener) = (
            rates["reference"], rates["all"], rates["listener"])
        assert n_ref == n_all == n_listener, (n_ref, n_all, n_listener)
        decoded, total = wanted_share(corpus)
        listener_ratio = listener_rate / ref_rate
        print(f"{kind}: {total} events, reference {ref_rate:9,.0f} ev/s (simple reader {rates['simple'][0]:9,.0f})")
        print(f"  (a) all decoded        pbx_codes {all_rate:9,.0f} ev/s -> {all_rate / ref_rate:5.2f}x reference")
        print(f"  (b) listener's events  pbx_codes {listener_rate:9,.0f} ev/s -> {listener_ratio:5.2f}x "
              f"reference ({decoded} of {total} events decoded, the rest skipped unread) (target >= 5x) "
              f"{'OK' if listener_ratio >= 5 else 'BELOW TARGET'}")


if __name__ == "__main__":
    main()
