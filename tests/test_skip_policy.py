"""The suite's skip policy (tests/conftest_skip_policy.py), run on small inner test sessions."""
from __future__ import annotations

import pytest

PLUGIN = ("-p", "tests.conftest_skip_policy", "-p", "no:asyncio")

SKIPPING = """
import pytest

pytestmark = []

def test_runs():
    pass

@pytest.mark.skipif(True, reason="sipp is not installed")
def test_marked():
    pass

def test_skips_in_the_body():
    pytest.skip("Chromium is not installed at /usr/bin/chromium")

@pytest.fixture()
def bench():
    pytest.skip("Asterisk bench unavailable: provisioning failed")

def test_skips_in_a_fixture(bench):
    pass

@pytest.mark.xfail(reason="a known defect", strict=True)
def test_expected_failure():
    assert False
"""


def test_outside_ci_a_missing_piece_skips_with_its_reason(pytester: pytest.Pytester,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(test_inner=SKIPPING)
    result = pytester.runpytest(*PLUGIN, "-ra")
    result.assert_outcomes(passed=1, skipped=3, xfailed=1)
    result.stdout.fnmatch_lines(["*SKIPPED*sipp is not installed*"])


def test_under_ci_every_skip_fails_with_one_line_naming_the_missing_piece(pytester: pytest.Pytester,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile(test_inner=SKIPPING)
    result = pytester.runpytest(*PLUGIN, "-ra")
    result.assert_outcomes(passed=1, failed=1, errors=2, xfailed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "ERROR *test_marked - CI=true: nothing may skip, and this did: sipp is not installed",
        "ERROR *test_skips_in_a_fixture - CI=true: nothing may skip, and this did: Asterisk bench unavailable*",
        "FAILED *test_skips_in_the_body - CI=true: nothing may skip, and this did: Chromium is not installed at*",
    ])


def test_under_ci_a_module_that_skips_at_import_fails_the_run(pytester: pytest.Pytester,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile(test_inner="import pytest\npytest.importorskip('no_such_module_here')\n"
                                   "def test_never():\n    pass\n")
    result = pytester.runpytest(*PLUGIN, "-ra")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*CI=true: nothing may skip, and this did: could not import 'no_such_module_here'*"])


def test_a_parametrised_test_over_an_empty_glob_fails_at_collection(pytester: pytest.Pytester,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite's setup.cfg sets empty_parameter_set_mark = fail_at_collect: no capture silently lost."""
    monkeypatch.delenv("CI", raising=False)
    pytester.makeini("[pytest]\nempty_parameter_set_mark = fail_at_collect\n")
    pytester.makepyfile(test_inner="import pathlib, pytest\n"
                                   "@pytest.mark.parametrize('path', sorted(pathlib.Path('nowhere').glob('*.txt')))\n"
                                   "def test_capture(path):\n    pass\n")
    result = pytester.runpytest("-p", "no:asyncio")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*Empty parameter set in 'test_capture'*"])


def test_the_suite_fails_on_an_empty_parameter_set(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.getini("empty_parameter_set_mark") == "fail_at_collect"
