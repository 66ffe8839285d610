"""pytest plugin: one real PostgreSQL (Debian's packaged server) on a free loopback port for the whole session.

Register it with ``pytest_plugins = ["tests.conftest_postgres"]``. The server runs from a throwaway data directory
owned by the `postgres` user (initdb refuses to run as root) and listens on 127.0.0.1 only. Tests that use
``postgres_server`` or ``postgres_url`` are skipped with the reason when it cannot run: PBX_CODES_SKIP_POSTGRES=1,
no server binaries (and they cannot be installed), or initdb failing; under CI=true every such skip fails the run
(tests/conftest_skip_policy.py). ``LocalPostgres`` is also what bench/bench_store.py uses.
"""
from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


class PostgresUnavailable(RuntimeError):
    """The server cannot be provisioned here; the message says why."""


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_bindir(install: bool = True) -> Path:
    """The newest /usr/lib/postgresql/*/bin with initdb; installs the `postgresql` package when root and missing."""
    def newest() -> Path | None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                       key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
        return Path(found[-1]).parent if found else None

    bindir = newest()
    if bindir is None and install and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "install", "-y", "--no-install-recommends", "postgresql"],
                    ["apt-get", "update"],
                    ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"]):
            subprocess.run(cmd, env=env, capture_output=True, timeout=600, check=False)
            bindir = newest()
            if bindir is not None:
                break
    if bindir is None:
        raise PostgresUnavailable("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin; apt package postgresql)")
    return bindir


class LocalPostgres:
    """A PostgreSQL server in a temporary directory, trust authentication, loopback only; stop() and start() again
    keep its data, so a test can take the database away and bring it back."""

    user = "pbx"

    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir or find_bindir()
        self.port = _free_tcp_port()
        self.root = Path(tempfile.mkdtemp(prefix="pbx-codes-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log = self.root / "server.log"
        self._as_postgres = os.geteuid() == 0
        self._databases = itertools.count(1)
        self.running = False

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if self._as_postgres else list(args)

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=timeout, check=False)

    def init(self) -> None:
        self.socket_dir.mkdir()
        if self._as_postgres:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root and there is no postgres user to run initdb as") from None
            for path in (self.root, self.socket_dir):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        done = self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust",
                         "-E", "UTF8", "--no-locale", "--no-sync")
        if done.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {(done.stderr or done.stdout).strip()[-500:]}")

    def start(self) -> None:
        # fsync off only risks data if the machine crashes; commits stay synchronous, so a killed server loses
        # nothing it acknowledged (the outage test relies on that)
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        done = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log),
                         "-w", "-t", "60", "start")
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-1500:] if self.log.exists() else ""
            raise PostgresUnavailable(f"pg_ctl start failed: {done.stderr.strip()} {log}")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server started here (`immediate` is what a crash or a kill looks like to clients)."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._databases)}"
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", 1)[1]
        try:
            with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.Error:
            pass  # the server may be stopping; the directory goes away with it

    def cleanup(self) -> None:
        if self.running:
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    @classmethod
    def launch(cls) -> LocalPostgres:
        server = cls()
        try:
            server.init()
            server.start()
        except BaseException:
            server.cleanup()
            raise
        return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """A running server for the session; tests that stop it must start it again."""
    if os.environ.get("PBX_CODES_SKIP_POSTGRES") == "1":
        pytest.skip("PBX_CODES_SKIP_POSTGRES=1")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip('PostgreSQL unavailable: psycopg 3 is not installed (pip install "psycopg[binary]")')
    try:
        server = LocalPostgres.launch()
    except (PostgresUnavailable, OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture()
def postgres_url(postgres_server: LocalPostgres) -> Iterator[str]:
    """The URL of a fresh database on the session's server, dropped afterwards."""
    if not postgres_server.running:
        postgres_server.start()
    url = postgres_server.create_database()
    try:
        yield url
    finally:
        if not postgres_server.running:
            postgres_server.start()
        postgres_server.drop_database(url)
