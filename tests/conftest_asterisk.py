"""pytest plugin: one real Asterisk (Debian sid, in a chroot on 127.0.0.1) for the whole test session.

Register it from tests/conftest.py with ``pytest_plugins = ["tests.conftest_asterisk"]`` (or the module's import
path in your layout). Tests that use ``asterisk_bench`` are skipped, with the reason, when the bench cannot run:
not root, PBX_CODES_SKIP_ASTERISK=1, or the root filesystem cannot be provisioned (no debootstrap, no mirror).
A provisioned Asterisk that fails to boot is an error, not a skip: it means the shipped config is broken.
Under CI=true every such skip fails the run (tests/conftest_skip_policy.py).
"""
from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator

import pytest

from pbx_codes.testbed.asterisk import AsteriskBench, BenchError


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def asterisk_bench_timings() -> dict[str, float]:
    """Seconds spent provisioning and booting, for reports (filled by ``asterisk_bench``)."""
    return {}


@pytest.fixture(scope="session")
def asterisk_bench(asterisk_bench_timings: dict[str, float]) -> Iterator[AsteriskBench]:
    """A running Asterisk with the shipped pbx-codes dialplan and CDR config, ports chosen at start.

    Its FastAGI address is a loopback port where nothing listens unless a test starts a server there
    (``asterisk_bench.agi_address``), so calls prove they survive a missing pbx-codes server.
    """
    if os.environ.get("PBX_CODES_SKIP_ASTERISK") == "1":
        pytest.skip("PBX_CODES_SKIP_ASTERISK=1")
    if os.geteuid() != 0:
        pytest.skip("the Asterisk bench needs root (debootstrap, chroot)")
    # Several test runs may share the cached root filesystem: wait for another run's Asterisk instead of failing.
    bench = AsteriskBench(agi_address=f"127.0.0.1:{_free_tcp_port()}",
                          lock_timeout=float(os.environ.get("PBX_CODES_BENCH_LOCK_WAIT", "600")))
    try:
        asterisk_bench_timings["provision_s"] = bench.provision()
    except (BenchError, OSError) as exc:
        pytest.skip(f"Asterisk bench unavailable: provisioning failed: {exc}")
    if shutil.which("sipp") is None:
        pytest.skip("Asterisk bench unavailable: sipp is not installed (apt package sip-tester)")
    started = time.monotonic()
    bench.start()  # a provisioned bench that does not boot is a bug in the config: fail, do not skip
    asterisk_bench_timings["boot_s"] = time.monotonic() - started
    try:
        yield bench
    finally:
        bench.stop()
