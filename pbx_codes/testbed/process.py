"""The bench's Asterisk process: started in the root filesystem with chroot, booted, restarted, stopped.

Only the process this object started is ever signalled (by its PID), and one Asterisk runs per root filesystem.
"""
from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

from pbx_codes.testbed.rootfs import BenchError, take_lock


class AsteriskProcess:
    """One Asterisk in `rootfs`, its AMI on 127.0.0.1:`ami_port` (for the boot check only)."""

    def __init__(self, rootfs: Path, *, boot_timeout: float = 30.0, lock_timeout: float = 0.0) -> None:
        self.rootfs, self.boot_timeout, self.lock_timeout = rootfs, boot_timeout, lock_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None

    @property
    def log_path(self) -> Path:
        return self.rootfs / "var/log/asterisk/full"

    def lock(self) -> None:
        """Take the root filesystem's lock (before its configuration is written)."""
        if self._lock is None:
            self._lock = take_lock(self.rootfs, self.lock_timeout)

    def start(self, ami_port: int, ami_user: str, ami_secret: str) -> None:
        """Start Asterisk and wait until AMI reports FullyBooted; stopped again if it does not."""
        self._login = (ami_port, ami_user, ami_secret)
        try:
            self.lock()
            self._spawn()
            self._wait_fully_booted()
        except BaseException:
            self.stop()
            raise

    def _spawn(self) -> None:
        log = open(self.rootfs / "var/log/asterisk/bench-console.log", "ab")  # noqa: SIM115
        try:
            self._process = subprocess.Popen(
                ["chroot", str(self.rootfs), "/usr/sbin/asterisk", "-f", "-n", "-U", "root", "-G", "root"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()

    def restart(self) -> None:
        """Stop this Asterisk (its PID only) and start it again, as a PBX restart looks to pbx-codes.

        Unlike stop() + start(), the lock is kept (no other bench can slip in between), and the ports,
        configuration and CDR files stay: the records written before the restart belong to the same run.
        """
        if self._process is None:
            raise BenchError("the Asterisk bench is not running")
        process, self._process = self._process, None
        _terminate(process)
        try:
            self._spawn()
            self._wait_fully_booted()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """End the Asterisk this object started (by its PID only) and release the lock."""
        process, self._process = self._process, None
        if process is not None:
            _terminate(process)
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    @property
    def started(self) -> bool:
        return self._process is not None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The PID of the Asterisk this object started (a restart changes it), None when it is not running."""
        return self._process.pid if self.running and self._process is not None else None

    def _wait_fully_booted(self) -> None:
        """Log in to AMI and wait for FullyBooted: AMI accepts a login ~0.4 s before Asterisk can take actions."""
        ami_port, ami_user, ami_secret = self._login
        deadline = time.monotonic() + self.boot_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise BenchError(f"asterisk exited with {self._process.returncode}; see {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", ami_port), timeout=2) as sock:
                    sock.settimeout(max(0.5, deadline - time.monotonic()))
                    login = (
                        f"Action: Login\r\nUsername: {ami_user}\r\nSecret: {ami_secret}\r\n"
                        "Events: system\r\n\r\n"
                    )
                    sock.sendall(login.encode())
                    buf = b""
                    while b"Event: FullyBooted" not in buf:
                        chunk = sock.recv(4096)
                        if not chunk:
                            break
                        buf += chunk
                        if b"Authentication failed" in buf:
                            raise BenchError("AMI login refused: manager.conf and the bench disagree")
                    if b"Event: FullyBooted" in buf:
                        sock.sendall(b"Action: Logoff\r\n\r\n")
                        return
            except OSError as exc:
                last_error = exc
            time.sleep(0.1)
        raise BenchError(f"Asterisk did not boot within {self.boot_timeout} s ({last_error}); see {self.log_path}")

    def cli(self, command: str, timeout: float = 10) -> str:
        """Run one CLI command on the running Asterisk (for diagnostics: ``pjsip show endpoints``)."""
        result = subprocess.run(["chroot", str(self.rootfs), "/usr/sbin/asterisk", "-rx", command],
                                capture_output=True, text=True, timeout=timeout, check=False)
        return result.stdout + result.stderr


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the one process the bench started, SIGKILL if it overstays."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


__all__ = ["AsteriskProcess"]
