"""The compose bench for the tests marked `docker`: brought up once per session (building what is missing) and
taken down, volumes and all, at the end. Needs a running Docker engine and root (the base image is debootstrapped);
without them the tests skip and say why, and under CI=true that is a failure (tests/conftest_skip_policy.py)."""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from support.docker_bench import DockerBench, free_tcp_port


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker: drives the compose bench (real containers: Asterisk, sipp, the "
                                       "plugin, PostgreSQL, Prometheus)")


def _missing() -> str | None:
    if shutil.which("docker") is None:
        return "docker is not installed (the compose bench needs a Docker engine)"
    if shutil.which("docker-compose") is None and subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=60).returncode != 0:
        return "neither `docker compose` nor `docker-compose` is installed (apt-get install docker-compose)"
    if subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode != 0:
        return "the Docker engine is not running (or this user may not use it)"
    if os.geteuid() != 0:
        return "not root: the bench's base image is made with debootstrap and chroot"
    return None


@pytest.fixture(scope="session")
def docker_bench() -> Iterator[DockerBench]:
    missing = _missing()
    if missing:
        pytest.skip(missing)
    bench = DockerBench(console_port=free_tcp_port(), prometheus_port=free_tcp_port())
    bench.down()  # what an interrupted session left: every count below starts from zero
    try:
        bench.up()
        yield bench
    finally:
        bench.down()
