"""The shipped Prometheus rules: promtool accepts them, their unit tests pass, and every series they read is one
pbx-codes exposes."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from pbx_codes.sinks.metrics import Metrics
from support.paths import REPO
from support.seizures import mix

RULES = REPO / "prometheus" / "pbx-codes.rules.yml"
RULE_TESTS = REPO / "prometheus" / "pbx-codes.rules.test.yml"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is missing (Debian package prometheus; scripts/setup.sh installs it)")
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120, cwd=RULES.parent)


def test_promtool_accepts_the_rules_file():
    done = run("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_of_the_rules_pass():
    done = run("test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_wrong_expectation_fails_the_rule_tests(tmp_path):
    """The unit tests can fail: the same file with one expected ratio changed is refused."""
    text = RULE_TESTS.read_text().replace("value: 0.8", "value: 0.7", 1)
    assert text != RULE_TESTS.read_text()
    (tmp_path / "pbx-codes.rules.yml").write_text(RULES.read_text())
    broken = tmp_path / "broken.test.yml"
    broken.write_text(text)
    done = subprocess.run([promtool(), "test", "rules", str(broken)], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode != 0 and "pbx_trunk:asr:ratio_rate5m" in done.stdout + done.stderr


def exposed_names() -> set[str]:
    metrics = Metrics()
    for annotation in mix():
        metrics.observe(annotation)
    return {line.split("{")[0].split(" ")[0] for line in metrics.render().decode().splitlines()
            if line and not line.startswith("#")}


def test_every_series_the_rules_read_is_exposed_by_pbx_codes():
    exposed = exposed_names()
    recorded = set()
    read = set()
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                recorded.add(rule["record"])
            read |= set(re.findall(r"\b(pbx_codes_[a-z_]+)", rule["expr"]))
    assert read and read <= exposed, sorted(read - exposed)
    assert {"pbx_trunk:asr:ratio_rate5m", "pbx_trunk:ner:ratio_rate5m", "pbx_trunk:seer:ratio_rate5m",
            "pbx_trunk:isa:ratio_rate5m"} <= recorded
