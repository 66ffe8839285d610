"""Rows per second of `pbx-codes enrich` on one core, from a generated CSV with realistic repetition.

A day of CDRs is a few hundred distinct causes spread over many calls: most rows are answered or ordinary
busy/no-answer, a tail are carrier failures with their own phrases, and every row has its own ids and times.
The generator writes such a file (the project's cdr_custom template, or stock Master.csv with `--layout master`),
then one enrich run over it is timed end to end (read, annotate, write the new file).

    python3 bench/bench_enrich.py [--rows 1000000] [--layout pbx|master|freeswitch] [--keep DIR]
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pbx_codes.catalog import load_catalogs
from pbx_codes.enrich import enrich_file, get_preset
from pbx_codes.enrich.interpret import RowAnnotator
from pbx_codes.resolve import Resolver

# (weight, disposition, raw cause, Asterisk dial status)
OUTCOMES = [
    (55, "ANSWERED", "", "ANSWER"),
    (12, "NO ANSWER", "SIP 480 Temporarily Unavailable", "NOANSWER"),
    (10, "BUSY", "SIP 486 Busy Here", "BUSY"),
    (5, "NO ANSWER", "SIP 487 Request Terminated", "CANCEL"),
    (4, "FAILED", "SIP 404 Not Found", "CHANUNAVAIL"),
    (3, "CONGESTION", "SIP 503 Service Unavailable", "CONGESTION"),
    (2, "CONGESTION", "SIP 503 Simultaneous calls limit reached", "CONGESTION"),
    (2, "NO ANSWER", "SIP 409 Not enough money", "CHANUNAVAIL"),
    (2, "FAILED", "SIP 603 Decline", "CHANUNAVAIL"),
    (2, "FAILED", "SIP 488 Not Acceptable Here", "CHANUNAVAIL"),
    (1, "FAILED", "SIP 403 Forbidden", "CHANUNAVAIL"),
    (1, "FAILED", "SIP 408 Request Timeout", "CHANUNAVAIL"),
    (1, "FAILED", "SIP 500 Internal Server Error", "CHANUNAVAIL"),
]
TRUNKS = ["trunk", "lifecell-trunk", "gw-mango", "backup"]


def _q(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def generate(path: Path, rows: int, layout: str, seed: int = 7) -> None:
    rnd = random.Random(seed)
    weights = [o[0] for o in OUTCOMES]
    # A few hundred distinct raw causes: the common ones plus carrier phrases with numbers in them.
    extra = [(1, "FAILED", f"SIP 4{rnd.randint(0, 99):02d} Carrier reject {n}", "CHANUNAVAIL") for n in range(300)]
    picks = rnd.choices(OUTCOMES, weights=weights, k=4096) + extra
    base = 1_795_400_000
    with path.open("w", encoding="utf-8", newline="") as f:
        for i in range(rows):
            _, disposition, raw, dial = picks[(i * 2654435761) % len(picks)]
            uid = f"{base + i // 3}.{i}"
            trunk = TRUNKS[i % len(TRUNKS)]
            start = f"2026-11-23 {8 + (i // 360000) % 12:02d}:{(i // 6000) % 60:02d}:{(i // 100) % 60:02d}"
            chan = f"PJSIP/caller-{i:08x}"
            dst = f"PJSIP/{trunk}-{i + 1:08x}"
            number = f"38067{i % 10_000_000:07d}"
            billsec = str(rnd.randint(1, 600)) if disposition == "ANSWERED" else "0"
            if layout == "master":
                # As cdr_csv writes it: strings quoted (quotes doubled), duration and billsec as bare numbers.
                head = ["", "1000", number, "from-internal", '"Caller" <1000>', chan, dst, "Dial",
                        f"PJSIP/{number}@{trunk},30", start, start if billsec != "0" else "", start]
                tail = [disposition, "DOCUMENTATION", uid, ""]
                f.write(",".join([*map(_q, head), billsec, billsec, *map(_q, tail)]) + "\n")
            elif layout == "freeswitch":
                code = raw.split(" ", 2)[1] if raw else "200"
                hc = {"ANSWERED": "NORMAL_CLEARING", "BUSY": "USER_BUSY", "NO ANSWER": "NO_ANSWER"}.get(
                    disposition, "NORMAL_TEMPORARY_FAILURE")
                fields = [f"uuid-{i:012x}", f"call-{i // 2:012x}", "1000", number, start, "", start, billsec,
                          billsec, hc, "", code, trunk] + [""] * 9
                f.write('"' + '","'.join(fields) + '"\n')
            else:
                fields = [start, start if billsec != "0" else "", start, billsec, billsec, disposition, uid, uid,
                          chan, dst, "1000", number, "pbx-codes-outbound-dial", "Dial",
                          f"PJSIP/{number}@{trunk},,b(pbx-codes-predial^s^1)", "", "", str(i), trunk, dial, raw,
                          "", "", "", "", "", "", "", ""]
                f.write(",".join(_q(v) for v in fields) + "\n")


PRESET_OF = {"pbx": "asterisk-cdr-custom-pbx", "master": "asterisk-master-csv", "freeswitch": "freeswitch-cdr-csv"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--layout", choices=sorted(PRESET_OF), default="pbx")
    parser.add_argument("--keep", metavar="DIR", help="write the files here and keep them")
    parser.add_argument("--repeat", type=int, default=3, help="runs to time (the best is reported)")
    args = parser.parse_args(argv)
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-enrich-"))
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / f"cdr-{args.layout}.csv"
    t = time.perf_counter()
    generate(source, args.rows, args.layout)
    print(f"generated {args.rows:,} rows ({source.stat().st_size / 1e6:.1f} MB, layout {args.layout}) "
          f"in {time.perf_counter() - t:.1f}s")
    resolver = Resolver(load_catalogs(), bindings={"lifecell-trunk": "lifecell", "gw-mango": "mango"})
    preset = get_preset(PRESET_OF[args.layout])
    best = None
    for n in range(args.repeat):
        output = folder / f"cdr-{args.layout}.enriched.csv"
        for old in (output, output.with_name(output.name + ".state.json")):
            old.unlink(missing_ok=True)
        annotator = RowAnnotator(resolver.resolve, lang="en", pbx=preset.pbx, quote_free=preset.tolerant,
                                use_trunk=bool(resolver.bindings))
        t = time.perf_counter()
        summary = enrich_file(source, preset, annotator, output=output, force=True, progress=False)
        elapsed = time.perf_counter() - t
        rate = summary.rows_read / elapsed
        best = max(best or 0.0, rate)
        print(f"run {n + 1}: {summary.rows_read:,} rows in {elapsed:.2f}s = {rate:,.0f} rows/s "
              f"(annotated {summary.annotated:,}, skipped {summary.skipped:,})")
    print(f"best: {best:,.0f} rows/s on one core (target 300,000)")
    if not args.keep:
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
