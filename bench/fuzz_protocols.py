"""Mutation fuzzing of the three sans-IO cores (AMI, ESL, AGI): only the documented ProtocolError, bounded memory.

Every core promises the same two things to the asyncio layer above it: whatever bytes a peer sends, `feed` either
returns messages or raises the core's documented `ProtocolError` (the connection is then dropped), and the bytes it
holds for an incomplete frame stay under a fixed bound. This script pushes `--frames` generated and mutated frames
(default one million per core) through each core to check both:

- seeds are the real frames of the recorded transcripts (tests/fixtures/asterisk for AMI, .../freeswitch for
  ESL; AGI requests and replies are built from the Asterisk transcripts' channels and HANGUPCAUSE values);
- each simulated connection is a greeting plus 1-48 frames, half of them mutated: byte flips, interesting bytes
  (CR, LF, colon, NUL, 0xff), truncations, duplicated and oversized headers, huge or malformed Content-Length,
  numbers written with non-ASCII digits or thousands of digits, dropped or doubled terminators, spliced frames,
  and now and then a flood without any terminator; the stream is split at random points across `feed` calls;
- any exception other than ProtocolError is a finding (printed with a reproducer prefix); so is a parser that
  holds more bytes than its bound after a `feed`, or a traced peak over `--max-peak-mib`.

Prints, per core: frames/s, MiB fed, connections, ProtocolError counts by kind, other exceptions, the largest
buffer seen and the tracemalloc peak. Exit status 1 on any finding. Cores run in parallel processes (`--jobs`).

    python3 bench/fuzz_protocols.py [--frames 1000000] [--seed 1] [--jobs 2] [--cores ami,esl,agi]
"""
from __future__ import annotations

import argparse
import multiprocessing
import random
import re
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pbx_codes.observers.asterisk import WANTED_EVENTS
from pbx_codes.protocols import ProtocolError
from pbx_codes.protocols import agi as agi_core
from pbx_codes.protocols import ami as ami_core
from pbx_codes.protocols import esl as esl_core

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"

#: What each parser may hold after a feed that did not raise (bytes), from each module's documented limits.
AMI_BOUND = ami_core.MAX_COMMAND_OUTPUT + ami_core.MAX_FRAME
ESL_BOUND = esl_core.DEFAULT_MAX_HEADER_BYTES + esl_core.DEFAULT_MAX_BODY_BYTES
AGI_BOUND = agi_core.MAX_LINE

MAX_MUTANT = 256 * 1024
INTERESTING = [b"\r", b"\n", b"\r\n", b"\n\n", b"\r\n\r\n", b":", b": ", b"\x00", b"\xff", b"\xc3", b" ", b"%",
               b"%0A", b"(", b")", b"\"", b"\\", b"--END COMMAND--", b"Event: ", b"Response: Follows\r\n",
               b"Content-Length: ", b"520-", b"520 ", b"HANGUP\n", b"result=", b"\xe2\x80\xa8", b"\xc2\xb2"]
# Numbers a careless int() chokes on: signs, spaces, exponent, non-ASCII digits, more digits than int() accepts.
ODD_NUMBERS = [b"-1", b"+5", b" 12 ", b"1e3", b"0x10", b"99999999999999999999", b"\xd9\xa3\xd9\xa4",
               b"\xc2\xb2\xc2\xb3\xc2\xb9", b"\xef\xbc\x91\xef\xbc\x92", b"9" * 5000, b"", b"1_000", b"\xe2\x91\xa0"]


@dataclass(slots=True)
class Report:
    """What one core's run saw."""

    core: str
    frames: int = 0
    connections: int = 0
    bytes_fed: int = 0
    feeds: int = 0
    messages: int = 0
    seconds: float = 0.0
    protocol_errors: Counter = field(default_factory=Counter)
    unexpected: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)  # exception kind -> reproducer prefix
    max_buffered: int = 0
    bound: int = 0
    over_bound: int = 0
    peak_bytes: int = 0
    peak_input: int = 0
    traced: int = 0
    seeds: int = 0


# -- seeds --------------------------------------------------------------------------------------------------------

def ami_seeds() -> tuple[list[bytes], list[bytes]]:
    """(greetings, frames) from the recorded AMI connections, plus a Follows answer and an Output answer."""
    banners, frames = set(), set()
    for path in sorted((FIXTURES / "asterisk").glob("*.ami.txt")):
        data = path.read_bytes()
        banner, _, rest = data.partition(b"\r\n")
        banners.add(banner + b"\r\n")
        frames.update(f + b"\r\n\r\n" for f in rest.split(b"\r\n\r\n") if f.strip())
    frames.add(b"Response: Follows\r\nPrivilege: Command\r\nActionID: 7\r\nName/username  Host  Dyn\r\n"
               b"trunk  192.0.2.1  N\r\n\r\n1 sip peers\r\n--END COMMAND--\r\n\r\n")
    frames.add(b"Response: Success\r\nActionID: 8\r\nMessage: Command output follows\r\nOutput: line one\r\n"
               b"Output: line two\r\n\r\n")
    return sorted(banners), sorted(frames)


def esl_frames_of(data: bytes) -> list[bytes]:
    """Split a raw ESL capture into frames by its own Content-Length (independent of the parser under test)."""
    frames, pos = [], 0
    while True:
        end = data.find(b"\n\n", pos)
        if end < 0:
            return frames
        head = data[pos:end + 2]
        match = re.search(rb"^Content-Length: (\d+)$", head, re.M)
        length = int(match.group(1)) if match else 0
        frames.append(data[pos:end + 2 + length])
        pos = end + 2 + length


def esl_seeds() -> tuple[list[bytes], list[bytes]]:
    greetings, frames = set(), set()
    for path in sorted((FIXTURES / "freeswitch").glob("503_simul_limit.*.esl.txt")) + \
            sorted((FIXTURES / "freeswitch").glob("409_not_enough_money.direct.*.esl.txt")):
        for frame in esl_frames_of(path.read_bytes()):
            (greetings if frame.startswith(b"Content-Type: auth/request") else frames).add(frame)
    frames.add(b"Content-Type: text/disconnect-notice\nContent-Length: 9\n\nbye bye\n\n")
    frames.add(b"Content-Type: log/data\nContent-Length: 5\nLog-Level: 7\n\nhello")
    return sorted(greetings), sorted(frames)


def agi_seeds() -> tuple[list[bytes], list[bytes]]:
    """(requests, replies): the environment res_agi sends and the replies it gives, with recorded values."""
    values, channels = set(), set()
    for path in sorted((FIXTURES / "asterisk").glob("*.ami.txt")):
        data = path.read_bytes()
        values.update(re.findall(rb"^Value: ([^\r\n]*)", data, re.M))
        channels.update(re.findall(rb"^Channel: ([^\r\n]*)", data, re.M))
    requests = []
    for channel in sorted(channels):
        env = [b"agi_network: yes", b"agi_network_script: annotate?lang=uk&catalog=lifecell",
               b"agi_request: agi://127.0.0.1/annotate?lang=uk&catalog=lifecell", b"agi_channel: " + channel,
               b"agi_language: en", b"agi_type: PJSIP", b"agi_uniqueid: 1795422912.12", b"agi_version: 22.10.1",
               b"agi_callerid: caller", b"agi_calleridname: Bench Caller", b"agi_callingpres: 0",
               b"agi_callingani2: 0", b"agi_callington: 0", b"agi_callingtns: 0", b"agi_dnid: 503",
               b"agi_rdnis: unknown", b"agi_context: hh-a", b"agi_extension: s", b"agi_priority: 1",
               b"agi_enhanced: 0.0", b"agi_accountcode: ", b"agi_threadid: 140412345678912",
               b"agi_arg_1: bleg=PJSIP/trunk-00000007", b"agi_arg_2: lang=uk"]
        requests.append(b"\n".join(env) + b"\n\n")
    replies = [b"200 result=1 (" + v + b")\n" for v in sorted(values)]
    replies += [b"200 result=0\n", b"200 result=1\n", b"510 Invalid or unknown command\n",
                b"511 Command Not Permitted on a dead channel or intercept routine\n", b"HANGUP\n",
                b"520-Invalid command syntax.  Proper usage follows:\nUsage: GET FULL VARIABLE <variablename>\n"
                b"520 End of proper usage.\n", b"200 result=-1 endpos=0\n", b"200 result=1 (a (nested) value) x=y\n"]
    return requests, replies


# -- mutations ----------------------------------------------------------------------------------------------------

def _lines(frame: bytes) -> list[bytes]:
    return frame.split(b"\n")


def mutate(frame: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    """One to three random mutations of a frame."""
    data = bytearray(frame)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        n = len(data)
        # Growing mutations stop at MAX_MUTANT: oversized is oversized, and the next ones must not multiply it.
        kind = rng.randrange(13) if n < MAX_MUTANT else rng.choice((0, 1, 3, 8, 9, 12))
        if kind == 0 and n:  # byte flips
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif kind == 1 and n:  # random bytes overwritten
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(n)] = rng.randrange(256)
        elif kind == 2:  # interesting token inserted
            pos = rng.randint(0, n)
            data[pos:pos] = rng.choice(INTERESTING)
        elif kind == 3 and n:  # truncation
            del data[rng.randrange(n):]
        elif kind == 4 and n:  # duplicated header line, up to an oversized frame
            lines = _lines(bytes(data))
            line = rng.choice(lines)
            pos = rng.randrange(len(lines))
            lines[pos:pos] = [line] * min(rng.choice((2, 3, 10, 300, 3000)), MAX_MUTANT // (len(line) + 1) + 1)
            data = bytearray(b"\n".join(lines))
        elif kind == 5:  # oversized header value around the line/frame limits
            size = rng.choice((255, 1000, 4096, 8191, 8192, 8193, 9000, 65535, 65537, 70000, 200000))
            line = b"X-Big: " + bytes([rng.choice(b"abc:\t%\xd0\xff")]) * size + b"\r\n"
            pos = bytes(data).find(b"\n") + 1
            data[pos:pos] = line
        elif kind == 6:  # Content-Length: huge, negative, non-ASCII, thousands of digits
            value = rng.choice(ODD_NUMBERS + [str(rng.choice((0, 1, 10, 2**23, 2**23 + 1, 2**31, 10**12))).encode()])
            text = bytes(data)
            if b"Content-Length: " in text and rng.random() < 0.7:
                data = bytearray(re.sub(rb"Content-Length: [^\r\n]*",
                                        lambda m, value=value: b"Content-Length: " + value, text, count=1))
            else:
                data[0:0] = b"Content-Length: " + value + b"\n"
        elif kind == 7:  # a number replaced by an odd one (TechCause, result=, status code, Cause)
            text = bytes(data)
            matches = list(re.finditer(rb"\d+", text))
            if matches:
                m = rng.choice(matches)
                data = bytearray(text[:m.start()] + rng.choice(ODD_NUMBERS) + text[m.end():])
        elif kind == 8:  # line endings: CRLF -> LF, LF -> CRLF, stray CR
            text = bytes(data)
            data = bytearray(rng.choice((text.replace(b"\r\n", b"\n"), text.replace(b"\n", b"\r\n"),
                                         text.replace(b"\n", b"\r", 1))))
        elif kind == 9:  # terminator dropped or doubled
            text = bytes(data).rstrip(b"\r\n")
            data = bytearray(text + rng.choice((b"", b"\r\n", b"\n", b"\r\n\r\n\r\n\r\n", b"\n\n\n")))
        elif kind == 10 and corpus:  # spliced with another frame
            other = rng.choice(corpus)
            data = bytearray(bytes(data)[:rng.randint(0, n)] + other[rng.randint(0, len(other)):])
        elif kind == 11 and n:  # a slice duplicated in place
            a = rng.randrange(n)
            b = min(n, a + rng.randint(1, 64))
            data[a:a] = data[a:b] * rng.randint(1, 20)
        elif kind == 12 and n:  # a header's colon removed or its name emptied
            text = bytes(data)
            data = bytearray(text.replace(b": ", rng.choice((b" ", b":", b"::", b": : ")), 1)
                             if rng.random() < 0.5 else re.sub(rb"(?m)^[A-Za-z_-]+:", b":", text, count=1))
    return bytes(data)


def flood(rng: random.Random, start: bytes) -> bytes:
    """A frame start followed by up to 3 MiB without any terminator: the buffer bound must hold."""
    filler = rng.choice((b"x", b"a: b ", b"\r", b"-", b"\xd0\x96"))
    return start + filler * (rng.choice((70_000, 300_000, 1_200_000, 3_000_000)) // len(filler))


FLOOD_STARTS = {
    "ami": [b"Event: Newexten\r\nPrivilege: dialplan,all\r\nAppData: ",
            b"Response: Follows\r\nPrivilege: Command\r\n", b"Response: Follows\r\nActionID: 1\r\n--END COMMAND--"],
    "esl": [b"Content-Type: text/event-plain\nX: ", b"Content-Length: 100\nContent-Type: api/response\n\n"],
    "agi": [b"agi_network: yes\nagi_channel: ", b"200 result=1 ("],
}


class Splitter:
    """Cuts the bytes of a connection into a peer's reads, across frame boundaries: each frame's bytes join what
    is left of the previous one, and everything after the last cut waits for the next frame. Per connection the
    reads are mostly socket-sized, often small, and now and then one byte at a time."""

    __slots__ = ("rng", "mode", "pending")

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        roll = rng.random()
        self.mode = "bytes" if roll < 0.02 else "small" if roll < 0.35 else "socket"
        self.pending = b""

    def reads(self, data: bytes, last: bool) -> list[bytes]:
        stream = self.pending + data
        n = len(stream)
        if n == 0:
            return []
        if self.mode == "bytes" and n <= 4096:
            cuts = list(range(1, n))
        else:
            many = self.rng.randint(1, 6) if self.mode == "small" else self.rng.randint(0, 1)
            cuts = sorted(self.rng.sample(range(1, n), min(n - 1, many + n // 65536))) if n > 1 else []
        if last or not cuts:
            if not last:
                self.pending = stream
                return []
            self.pending = b""
            return [stream[x:y] for x, y in zip([0] + cuts, cuts + [n])]
        self.pending = stream[cuts[-1]:]
        return [stream[x:y] for x, y in zip([0] + cuts[:-1], cuts)]


# -- per-core drivers ---------------------------------------------------------------------------------------------

def _ami_parser(rng: random.Random) -> ami_core.AmiParser:
    return ami_core.AmiParser(WANTED_EVENTS if rng.random() < 0.5 else None)


def _ami_touch(messages: list) -> None:
    for message in messages:  # what consumers call on an event must not fail either
        if isinstance(message, ami_core.Event):
            _ = message.headers
            message.get("Uniqueid")
            message.values("ChanVariable")


def _esl_touch(messages: list) -> None:
    for message in messages:
        if isinstance(message, esl_core.Event):
            message.get("Unique-ID")


def _agi_touch(messages: list) -> None:
    for message in messages:
        if isinstance(message, agi_core.AgiRequest):
            message.param("bleg")
            _ = message.channel


@dataclass(frozen=True, slots=True)
class Core:
    name: str
    seeds: Callable[[], tuple[list[bytes], list[bytes]]]
    parser: Callable[[random.Random], object]
    error: type
    bound: int
    touch: Callable[[list], None]
    eof: Callable[[object], None] | None = None


CORES = {
    "ami": Core("ami", ami_seeds, _ami_parser, ProtocolError, AMI_BOUND, _ami_touch),
    "esl": Core("esl", esl_seeds, lambda rng: esl_core.EslParser(), esl_core.ProtocolError, ESL_BOUND, _esl_touch),
    "agi": Core("agi", agi_seeds, lambda rng: agi_core.AgiParser(), ProtocolError, AGI_BOUND, _agi_touch,
                lambda parser: parser.feed_eof()),  # type: ignore[attr-defined]
}


def _kind(exc: BaseException) -> str:
    """An error message without its numbers and quoted data, to count errors by kind."""
    text = re.sub(r"'.*|\".*|b'.*", "", str(exc))
    return f"{type(exc).__name__}: {re.sub(r'[0-9]+', 'N', text).strip()}"[:90]


def run_core(name: str, frames: int, seed: int, max_peak_mib: float, trace_every: int = 1,
             mutation_rate: float = 0.3) -> Report:
    core = CORES[name]
    rng = random.Random(f"{seed}-{name}")
    greetings, corpus = core.seeds()
    report = Report(name, bound=core.bound, seeds=len(greetings) + len(corpus))
    started = time.perf_counter()
    while report.frames < frames:
        count = min(rng.randint(1, 16), frames - report.frames)
        pieces = []
        if rng.random() < 0.95:
            greeting = rng.choice(greetings)
            pieces.append(mutate(greeting, rng, corpus) if rng.random() < 0.1 else greeting)
        for _ in range(count):
            frame = rng.choice(corpus)
            pieces.append(mutate(frame, rng, corpus) if rng.random() < mutation_rate else frame)
        if rng.random() < 0.004:
            pieces.append(flood(rng, rng.choice(FLOOD_STARTS[name])))
        report.frames += count
        report.connections += 1
        splitter = Splitter(rng)
        reads = [chunk for i, piece in enumerate(pieces) for chunk in splitter.reads(piece, i == len(pieces) - 1)]
        del pieces
        parser = core.parser(rng)
        do_eof = core.eof is not None and rng.random() < 0.5
        size = sum(len(chunk) for chunk in reads)
        traced = report.connections % trace_every == 0 or size > 65536  # every big input is traced
        fed_before = report.bytes_fed
        if traced:  # only what the parser allocates while it reads (the input exists already)
            tracemalloc.start()
        try:
            for chunk in reads:
                messages = parser.feed(chunk)  # type: ignore[attr-defined]
                report.feeds += 1
                report.bytes_fed += len(chunk)
                report.messages += len(messages)
                core.touch(messages)
                del messages
                held = parser.buffered  # type: ignore[attr-defined]
                if held > report.max_buffered:
                    report.max_buffered = held
                if held > core.bound:
                    report.over_bound += 1
                    report.examples.setdefault("over bound", b"".join(reads)[:300])
            if do_eof:
                core.eof(parser)  # type: ignore[misc]
        except core.error as exc:
            report.protocol_errors[_kind(exc)] += 1
        except Exception as exc:
            kind = _kind(exc)
            report.unexpected[kind] += 1
            report.examples.setdefault(kind, b"".join(reads)[:300])
        finally:
            if traced:
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                report.traced += 1
                if peak > report.peak_bytes:
                    report.peak_bytes = peak
                    report.peak_input = report.bytes_fed - fed_before
    report.seconds = time.perf_counter() - started
    if report.peak_bytes > max_peak_mib * 1024 * 1024:
        report.examples.setdefault("peak over bound", b"")
    return report


def _run(args: tuple[str, int, int, float, int, float]) -> Report:
    return run_core(*args)


def print_report(report: Report, max_peak_mib: float) -> bool:
    """Print one core's numbers; True when it found nothing."""
    mib = 1024 * 1024
    errors = sum(report.protocol_errors.values())
    print(f"\n== {report.core.upper()}: {report.frames:,} frames ({report.seeds} seed frames), "
          f"{report.connections:,} connections, {report.bytes_fed / mib:,.1f} MiB fed in {report.feeds:,} feeds, "
          f"{report.messages:,} messages out")
    print(f"   {report.frames / report.seconds:,.0f} frames/s, {report.bytes_fed / mib / report.seconds:,.1f} MiB/s "
          f"({report.seconds:.1f}s; tracemalloc on for {report.traced:,} connections)")
    print(f"   ProtocolError: {errors:,} connections dropped")
    for kind, n in report.protocol_errors.most_common(8):
        print(f"      {n:>9,}  {kind}")
    print(f"   other exceptions: {sum(report.unexpected.values()):,}")
    for kind, n in report.unexpected.most_common():
        print(f"      {n:>9,}  {kind}\n                 first input: {report.examples.get(kind, b'')[:160]!r}")
    print(f"   largest buffer after a feed: {report.max_buffered:,} bytes (bound {report.bound:,}); "
          f"over the bound: {report.over_bound}")
    print(f"   tracemalloc peak while reading one connection: {report.peak_bytes / mib:.1f} MiB "
          f"(that connection: {report.peak_input / mib:.1f} MiB of input; bound {max_peak_mib} MiB)")
    return not report.unexpected and not report.over_bound and report.peak_bytes <= max_peak_mib * mib


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000, help="frames per core (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="cores fuzzed in parallel processes")
    parser.add_argument("--cores", default="ami,esl,agi")
    parser.add_argument("--max-peak-mib", type=float, default=64.0,
                        help="tracemalloc peak allowed while one connection is read (default 64)")
    parser.add_argument("--trace-every", type=int, default=10,
                        help="trace the allocations of every Nth connection, and of every one over 64 KiB "
                             "(default 10)")
    parser.add_argument("--mutation-rate", type=float, default=0.3, help="share of frames mutated (default 0.3)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.cores.split(",") if n.strip()]
    if not (FIXTURES / "asterisk").is_dir() or not (FIXTURES / "freeswitch").is_dir():
        print(f"fixtures not found under {FIXTURES}", file=sys.stderr)
        return 2
    jobs = [(name, args.frames, args.seed, args.max_peak_mib, args.trace_every, args.mutation_rate)
            for name in names]
    started = time.perf_counter()
    if args.jobs > 1 and len(jobs) > 1:
        with multiprocessing.get_context("spawn").Pool(min(args.jobs, len(jobs))) as pool:
            reports = pool.map(_run, jobs, chunksize=1)
    else:
        reports = [_run(job) for job in jobs]
    clean = [print_report(r, args.max_peak_mib) for r in reports]
    print(f"\n{sum(r.frames for r in reports):,} frames in {time.perf_counter() - started:.1f}s wall: "
          + ("no findings" if all(clean) else "FINDINGS above"))
    return 0 if all(clean) else 1


if __name__ == "__main__":
    sys.exit(main())
