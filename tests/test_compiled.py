"""The optional compiled build (setup.py with ``PBX_CODES_COMPILE=1``) and `pbx_codes.compiled`, which tells which
build runs.

The build is made once per session into a scratch directory; the compiled modules run in a child interpreter that
imports pbx_codes from there (this process already holds the pure-Python ones). Every Asterisk capture, as recorded
and with multibyte text, fed whole, in small reads and in 4 KiB reads, must give the compiled parser and observer
exactly what it gives the pure-Python ones. Without mypy, a C compiler or the Python headers the build's tests skip
and say which; under CI=true that skip fails (tests/conftest_skip_policy.py).
"""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pbx_codes.cli.main import main
from pbx_codes.compiled import HOT_MODULES, build_description, compiled_modules
from support.compiled_build import (
    BuildUnavailable,
    build_compiled,
    chunked,
    multibyte,
    replay_digest,
    run_with,
    variants,
)
from support.paths import FIXTURES, REPO, captures

CAPTURES = captures(FIXTURES / "asterisk", "*.ami.txt")


@pytest.fixture(scope="session")
def compiled_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return build_compiled(tmp_path_factory.mktemp("compiled"))
    except BuildUnavailable as exc:
        pytest.skip(str(exc))


# -- the compiled build ---------------------------------------------------------------------------------------------

def test_the_compiled_build_loads_every_hot_module_from_a_c_extension(compiled_path: Path) -> None:
    report = json.loads(run_with(compiled_path, (
        "import json, importlib\n"
        "from pbx_codes.compiled import HOT_MODULES, compiled_modules, build_description\n"
        "files = {name: importlib.import_module(name).__file__ for name in HOT_MODULES}\n"
        "print(json.dumps({'compiled': compiled_modules(), 'files': files, 'description': build_description()}))\n")))
    assert report["compiled"] == dict.fromkeys(HOT_MODULES, True)
    assert report["description"] == "compiled with mypyc"
    for name, file in report["files"].items():
        assert Path(file).is_relative_to(compiled_path), (name, file)
        assert Path(file).suffix == ".so", (name, file)


def test_the_compiled_parser_and_observer_give_the_pure_python_results_on_every_capture(compiled_path: Path) -> None:
    """Observations, decoded messages and the parser's counters, line for line, over every capture and feed."""
    paths = [str(p) for p in CAPTURES]
    compiled = json.loads(run_with(compiled_path, (
        "import json\n"
        "from pbx_codes.compiled import hot_modules_compiled\n"
        "from support.compiled_build import replay_digest\n"
        "assert hot_modules_compiled()\n"
        f"print(json.dumps(replay_digest({paths!r})))\n")))
    pure = replay_digest(paths)
    assert len(pure) == len(CAPTURES) * 2 * 3 * 2
    assert len(compiled) == len(pure)
    for ours, theirs in zip(pure, compiled):
        assert theirs == ours


def test_the_version_names_the_compiled_build(compiled_path: Path) -> None:
    out = run_with(compiled_path, "from pbx_codes.cli.main import main\nmain(['--version'])\n")
    assert out.strip().endswith("(compiled with mypyc)")


# -- what the comparison feeds, and the pure-Python build ----------------------------------------------------------

def test_the_small_reads_split_multibyte_characters_and_crlf() -> None:
    data = multibyte((FIXTURES / "asterisk" / "money409.ami.txt").read_bytes())
    pieces = chunked(data, "small")
    assert b"".join(pieces) == data
    assert any(0x80 <= piece[0] < 0xC0 for piece in pieces)  # a piece that starts inside a UTF-8 character
    assert any(piece.startswith(b"\n") for piece in pieces)  # a CRLF split between two reads
    assert all(b"".join(chunked(d, feed)) == d for d in variants(data).values() for feed in ("whole", "4k"))


def test_the_multibyte_variant_reaches_the_observations() -> None:
    (line,) = [line for line in replay_digest([str(FIXTURES / "asterisk" / "money409.ami.txt")])
               if line.startswith("money409.ami.txt multibyte small observations")]
    assert "недостатньо коштів 💸" in line


def test_the_pure_python_modules_say_so(tmp_path: Path) -> None:
    """A copy of the package without extensions: each hot module is loaded from its ``.py`` and says so."""
    shutil.copytree(REPO / "pbx_codes", tmp_path / "pbx_codes", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    out = run_with(tmp_path, (
        "import importlib\n"
        "from pbx_codes.compiled import HOT_MODULES, build_description, hot_modules_compiled\n"
        "for name in HOT_MODULES: assert importlib.import_module(name).__file__.endswith('.py')\n"
        "print(hot_modules_compiled(), build_description())\n"))
    assert out.split() == ["False", "pure", "Python"]


def test_the_version_names_the_build_that_runs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip().endswith(f"({build_description()})")
    assert set(compiled_modules()) == set(HOT_MODULES)


def test_setup_compiles_exactly_the_hot_modules() -> None:
    tree = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    (paths,) = [ast.literal_eval(node.value) for node in ast.walk(tree)
                if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["HOT_MODULES"]]
    assert [p.removesuffix(".py").replace("/", ".") for p in paths] == list(HOT_MODULES)


def test_the_default_build_needs_neither_mypy_nor_a_compiler() -> None:
    """Without PBX_CODES_COMPILE, setup.py declares no extension and never imports mypyc."""
    code = ("import sys, runpy, setuptools\n"
            "seen = {}\n"
            "setuptools.setup = lambda **kw: seen.update(kw)\n"
            "sys.argv = ['setup.py', 'egg_info']\n"
            "runpy.run_path('setup.py', run_name='__main__')\n"
            "print(sorted(seen), 'mypyc' in sys.modules)\n")
    env = {k: v for k, v in os.environ.items() if k != "PBX_CODES_COMPILE"}
    result = subprocess.run([sys.executable, "-I", "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == ["[]", "False"]
