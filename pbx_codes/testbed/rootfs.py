"""The bench's Debian sid root filesystem: where it is cached, how it is built, and its lock.

Why a chroot and not the host's Asterisk: the bench must not touch a PBX the user runs, needs a recent Asterisk
(TechCause in Hangup events exists since 22.7), and must work without a container runtime. The root filesystem is
built once by ``scripts/provision-asterisk-rootfs.sh`` and cached, so several checkouts can share one cache (one
Asterisk at a time: a lock file says so).
"""
from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

from pbx_codes.errors import PbxCodesError

REPO_DIR = Path(__file__).resolve().parents[2]
PROVISION_SCRIPT = REPO_DIR / "scripts" / "provision-asterisk-rootfs.sh"


class BenchError(PbxCodesError, RuntimeError):
    """The bench could not be provisioned, started or driven."""


def default_rootfs() -> Path:
    """Where the provisioned root filesystem is cached (PBX_CODES_ROOTFS overrides)."""
    env = os.environ.get("PBX_CODES_ROOTFS")
    return Path(env) if env else Path.home() / ".cache" / "pbx-codes" / "asterisk-sid"


def is_provisioned(rootfs: Path) -> bool:
    return (rootfs / ".provisioned").is_file() and (rootfs / "usr/sbin/asterisk").is_file()


def provision(rootfs: Path) -> float:
    """Build or reuse the cached root filesystem; returns the seconds it took."""
    if os.geteuid() != 0:
        raise BenchError("the Asterisk bench needs root (debootstrap and chroot)")
    if not PROVISION_SCRIPT.is_file():
        raise BenchError(f"building a root filesystem needs a checkout of pbx-codes ({PROVISION_SCRIPT.name}); "
                         "an installed package uses one built already (PBX_CODES_ROOTFS)")
    started = time.monotonic()
    result = subprocess.run(["bash", str(PROVISION_SCRIPT), str(rootfs)], capture_output=True, text=True,
                            timeout=1800, check=False)
    if result.returncode != 0:
        raise BenchError(f"provisioning failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return time.monotonic() - started


def take_lock(rootfs: Path, timeout: float) -> IO[str]:
    """One Asterisk per root filesystem: wait up to `timeout` seconds for another bench to finish; the open
    file holds the lock until it is closed."""
    lock = open(rootfs / ".bench.lock", "w")  # noqa: SIM115
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock
        except BlockingIOError:
            if time.monotonic() >= deadline:
                lock.close()
                raise BenchError(f"another Asterisk bench is running in {rootfs}") from None
            time.sleep(0.2)


def free_port(kind: int = socket.SOCK_DGRAM, host: str = "127.0.0.1") -> int:
    """A port the kernel says is free now on ``host`` (UDP by default: SIP runs over UDP here)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_port_both(host: str = "127.0.0.1") -> int:
    """A port free for both TCP and UDP (AMI is TCP, but one number is easier to read in logs)."""
    while True:
        port = free_port(socket.SOCK_STREAM, host)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind((host, port))
            return port
        except OSError:
            continue


__all__ = ["BenchError", "PROVISION_SCRIPT", "default_rootfs", "free_port", "free_port_both", "is_provisioned",
           "provision", "take_lock"]
