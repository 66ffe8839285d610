"""The optional compiled build (setup.py, ``PBX_CODES_COMPILE=1``) made into a scratch directory, for the tests
that compare it with the pure-Python modules and for bench/bench_ami.py.

`build_compiled` copies what setup.py needs (the package, setup.py, setup.cfg, pyproject.toml, README.md) into
the scratch directory and compiles the hot modules in place there (``setup.py build_ext --inplace``): nothing is
written into the checkout, and a process that puts the scratch directory first on ``sys.path`` imports the compiled
modules with the rest of the package beside them. `run_with` runs Python code in such a process.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from support.paths import REPO

#: What setup.py reads besides the package itself.
BUILD_FILES = ("setup.py", "setup.cfg", "pyproject.toml", "README.md")


class BuildUnavailable(RuntimeError):
    """A piece the compiled build needs is missing on this machine (mypy, a C compiler, the Python headers)."""


def missing_piece() -> str | None:
    """Why the compiled build cannot be made here, in one line; None when everything it needs is present."""
    if importlib.util.find_spec("mypyc") is None:
        return "the compiled build needs mypy (mypyc) in this interpreter: pip install -e '.[test]'"
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"the compiled build needs a C compiler ({compiler} not found; Debian: apt-get install gcc)"
    include = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not include.is_file():
        return f"the compiled build needs the Python headers ({include} is missing; Debian: python3-dev)"
    return None


def build_compiled(dest: Path, *, python: str = sys.executable, repo: Path = REPO) -> Path:
    """Compile the hot modules of `repo` under `dest`; returns the directory to put first on ``sys.path``.

    Raises `BuildUnavailable` when a piece is missing, RuntimeError (with the build's last lines) when the build
    itself fails."""
    reason = missing_piece()
    if reason is not None:
        raise BuildUnavailable(reason)
    src = dest / "src"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    shutil.copytree(repo / "pbx_codes", src / "pbx_codes",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd", "*.c"))
    for name in BUILD_FILES:
        shutil.copy2(repo / name, src / name)
    env = {**os.environ, "PBX_CODES_COMPILE": "1"}
    result = subprocess.run([python, "setup.py", "-q", "build_ext", "--inplace"], cwd=src, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-30:])
        raise RuntimeError(f"the compiled build failed (exit {result.returncode}):\n{tail}")
    return src


def run_with(path: Path, code: str, *, python: str = sys.executable, timeout: float = 600) -> str:
    """Run `code` in a fresh interpreter that imports pbx_codes from `path` first (``support`` importable too);
    returns its standard output. Isolated mode: neither the working directory nor PYTHONPATH comes first."""
    prelude = f"import sys; sys.path[:0] = [{str(path)!r}, {str(REPO / 'tests')!r}]\n"
    result = subprocess.run([python, "-I", "-c", prelude + code], capture_output=True, text=True, timeout=timeout,
                            check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the child interpreter failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
    return result.stdout


# -- the same captures through whichever build is imported ---------------------------------------------------------

#: How a capture is fed: in one piece, in small reads cycling through these sizes (splitting lines, CRLFs and
#: multibyte characters), and in the 4 KiB reads a socket gives.
SMALL_READS = (1, 2, 3, 5, 7, 11, 13)
FEEDS = ("whole", "small", "4k")


def chunked(data: bytes, feed: str) -> list[bytes]:
    if feed == "whole":
        return [data]
    if feed == "4k":
        return [data[i:i + 4096] for i in range(0, len(data), 4096)]
    pieces, pos, turn = [], 0, 0
    while pos < len(data):
        size = SMALL_READS[turn % len(SMALL_READS)]
        pieces.append(data[pos:pos + size])
        pos, turn = pos + size, turn + 1
    return pieces


def multibyte(data: bytes) -> bytes:
    """The capture with multibyte text where a listener meets it: the caller's name in every event, the carrier's
    reason phrase in the Getvar answers (2-, 3- and 4-byte UTF-8 characters)."""
    data = data.replace(b"Bench Caller", "Абонент ☎ 📞".encode())
    return data.replace(b"Busy Here\r\n", "Busy Here — зайнято ☎\r\n".encode()).replace(
        b"Not enough money\r\n", "Not enough money — недостатньо коштів 💸\r\n".encode())


def variants(data: bytes) -> dict[str, bytes]:
    return {"ascii": data, "multibyte": multibyte(data)}


def replay_digest(paths: list[str]) -> list[str]:
    """One line per (capture, variant, feed): the Observations `observe_stream` gives, and every message the AMI
    parser decodes with no event filter (events by name and text, the rest by repr) with its counters. Imports
    pbx_codes when called: the lines tell what the build first on ``sys.path`` does."""
    from pbx_codes.observers.asterisk import observe_stream
    from pbx_codes.protocols.ami import AmiParser, Event

    lines = []
    for path in paths:
        name = Path(path).name
        for variant, data in variants(Path(path).read_bytes()).items():
            for feed in FEEDS:
                pieces = chunked(data, feed)
                lines.append(f"{name} {variant} {feed} observations {observe_stream(data, chunks=pieces)!r}")
                parser = AmiParser()
                messages = [("Event", m.name, m.raw) if isinstance(m, Event) else repr(m)
                            for piece in pieces for m in parser.feed(piece)]
                counters = (parser.frames, parser.skipped, parser.unknown, parser.buffered)
                lines.append(f"{name} {variant} {feed} messages {counters!r} {messages!r}")
    return lines
