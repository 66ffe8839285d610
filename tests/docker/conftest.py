"""The compose bench for the tests marked `docker`: brought up once per session (building what is missing) and
taken down, volumes and all, at the end. Needs a running Docker engine and root (the base image is debootstrapped);
without them the tests skip and say why, and under CI=true that is a failure (tests/conftest_skip_policy.py)."""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from support.docker_bench import PROJECT_PREFIX, DockerBench, free_tcp_port


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


def remove_abandoned_benches() -> None:
    """Benches of test sessions that ended without taking theirs down (killed): each session's bench is its own
    compose project, named after its process, so sessions running at the same time never stop each other's."""
    labels = subprocess.run(["docker", "ps", "-a", "--format", '{{.Label "com.docker.compose.project"}}'],
                            capture_output=True, text=True, timeout=60).stdout.split()
    for project in sorted(set(labels)):
        pid = project.removeprefix(PROJECT_PREFIX)
        if project.startswith(PROJECT_PREFIX) and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            DockerBench(console_port=0, prometheus_port=0, project=project).down()


@pytest.fixture(scope="session")
def docker_bench() -> Iterator[DockerBench]:
    missing = _missing()
    if missing:
        pytest.skip(missing)
    remove_abandoned_benches()
    bench = DockerBench(console_port=free_tcp_port(), prometheus_port=free_tcp_port(),
                        project=f"{PROJECT_PREFIX}{os.getpid()}")
    try:
        bench.up()
        yield bench
    finally:
        if not os.environ.get("PBX_CODES_DOCKER_KEEP"):  # =1 keeps it up to look at after a failure
            bench.down()
