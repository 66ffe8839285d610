"""The compose bench as the tests drive it: `scripts/docker-bench.sh` brings it up and down, sipp runs in the caller
container, and every check reads what a container holds (the CDR files in the asterisk-cdr volume, the rows in the
PostgreSQL container, Prometheus' HTTP API, the console).

Each test session's bench is its own compose project (`pbxcodes-test-<pid>`), on free loopback ports, so neither a
bench someone started by hand nor another session's is ever touched.
"""
from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.waiting import block_until

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "docker-bench.sh"
CARRIERS = REPO / "docker" / "sipp" / "carriers.txt"
PROJECT_PREFIX = "pbxcodes-test-"
CDR_DIR = "/var/log/asterisk/cdr-custom"
STORE_URL = "postgresql://pbxcodes@postgres:5432/pbxcodes"


@dataclass(frozen=True, slots=True)
class Carrier:
    port: int
    catalog: str
    code: str
    phrase: str

    @property
    def trunk(self) -> str:
        return f"{self.catalog}-{self.port}"


def carriers() -> list[Carrier]:
    rows = []
    for line in CARRIERS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            port, catalog, code, phrase = line.split("|")
            rows.append(Carrier(int(port), catalog, code, phrase))
    return rows


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], object], limit: float, what: str) -> None:
    """The shared wait (support.waiting) for the synchronous checks here: each poll runs a container command."""
    block_until(predicate, limit, step=0.25, what=what)


@dataclass
class DockerBench:
    console_port: int
    prometheus_port: int
    project: str
    placed: Counter[str] = field(default_factory=Counter)  # trunk -> calls placed through the bench this session

    # -- the script -----------------------------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "PBX_CODES_DOCKER_PROJECT": self.project,
                "PBX_CODES_CONSOLE_PORT": str(self.console_port),
                "PBX_CODES_PROMETHEUS_PORT": str(self.prometheus_port)}

    def script(self, *args: str, timeout: float = 1500) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=self.env,
                              cwd=REPO)

    def up(self) -> None:
        result = self.script("up")
        assert result.returncode == 0, f"docker-bench.sh up failed:\n{result.stderr[-4000:]}"

    def down(self) -> None:
        self.script("down", "--volumes", timeout=300)

    # -- containers -----------------------------------------------------------------------------------------------

    def container(self, service: str) -> str:
        out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}",
                              "--filter", f"label=com.docker.compose.service={service}"],
                             capture_output=True, text=True, timeout=60, check=True).stdout.split()
        assert out, f"no {service} container in {self.project}"
        return out[0]

    def docker(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
        if check:
            assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr.strip()}"
        return result

    def exec(self, service: str, *command: str, user: str | None = None, timeout: float = 120,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.docker("exec", *(["-u", user] if user else []), self.container(service), *command,
                           timeout=timeout, check=check)

    def state(self, service: str) -> str:
        """`running/healthy`, `running/none` (no health check), `exited/unhealthy`, ..."""
        return self.docker("inspect", "-f", "{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}"
                           "{{else}}none{{end}}", self.container(service)).stdout.strip()

    def wait_healthy(self, *services: str, limit: float = 120) -> None:
        for service in services:
            wait_for(lambda s=service: self.state(s) in ("running/healthy", "running/none"), limit,
                     f"{service} healthy")

    # -- calls ----------------------------------------------------------------------------------------------------

    def sipp_command(self, carrier: Carrier, caller_id: str, calls: int = 1, rate: float = 10.0) -> list[str]:
        """sipp in the caller container: `calls` calls from `caller_id` to the carrier's number, `rate` per second."""
        return ["docker", "exec", self.container("caller"), "sipp", "asterisk:5060",
                "-sf", "/etc/pbx-codes-bench/caller.xml", "-s", str(carrier.port), "-key", "caller", caller_id,
                "-m", str(calls), "-r", str(rate), "-l", "200", "-nostdin", "-timeout", "180s",
                "-recv_timeout", "20000"]

    def place(self, carrier: Carrier, caller_id: str, calls: int = 1, rate: float = 10.0) -> None:
        subprocess.run(self.sipp_command(carrier, caller_id, calls, rate), capture_output=True, timeout=240)
        self.placed[carrier.trunk] += calls

    # -- what the containers hold ---------------------------------------------------------------------------------

    def cdr_records(self) -> list[dict[str, str]]:
        """Every record Asterisk's cdr_custom wrote (the asterisk-cdr volume, read in the caller), from the CSV
        mapping: the JSON one is cut at 1 KB, which a long reason in Ukrainian reaches."""
        names = cdr_csv_fields()
        return [dict(zip(names, values)) for values in csv.reader(io.StringIO(self.cdr_csv()))]

    def cdr_csv(self) -> str:
        return self.exec("caller", "sh", "-c", "cat /cdr/pbx_codes.csv 2>/dev/null || true").stdout

    def records_from(self, caller_id: str) -> list[dict[str, str]]:
        return [r for r in self.cdr_records() if r.get("src") == caller_id]

    def wait_records(self, caller_id: str, count: int, limit: float = 60) -> list[dict[str, str]]:
        wait_for(lambda: len(self.records_from(caller_id)) >= count, limit, f"{count} CDRs from {caller_id}")
        return self.records_from(caller_id)

    def sql(self, query: str) -> list[list[str]]:
        """Rows of a query in the PostgreSQL container (as its postgres user, over the local socket)."""
        out = self.exec("postgres", "psql", "-h", "/run/postgresql", "-d", "pbxcodes", "-X", "-A", "-t",
                        "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", query, user="postgres").stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def store_rows(self, linkedids: list[str]) -> list[dict[str, str]]:
        """The store's rows for these calls (by Asterisk's linkedid), every column the checks read."""
        if not linkedids:
            return []
        columns = ("rid", "linkedid", "uniqueid", "trunk", "catalog", "code", "phrase", "category", "retry", "exact")
        quoted = ",".join("'" + lid.replace("'", "''") + "'" for lid in linkedids)
        rows = self.sql(f"SELECT {', '.join(columns)} FROM hangups WHERE linkedid IN ({quoted}) ORDER BY id")
        return [dict(zip(columns, row)) for row in rows]

    def prometheus(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.prometheus_port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def console_url(self) -> str:
        token = (REPO / "docker" / "secrets" / "console_token").read_text(encoding="utf-8").splitlines()[0].strip()
        return f"http://127.0.0.1:{self.console_port}/?token={token}"

    # -- after an outage ------------------------------------------------------------------------------------------

    def enrich_cdrs(self, tmp: Path) -> list[dict[str, str]]:
        """`pbx-codes enrich` over a copy of Asterisk's CSV CDRs: the records with the annotations added where the
        live path could not write them (what an operator runs after an outage)."""
        source = tmp / "pbx_codes.csv"
        source.write_text(self.cdr_csv(), encoding="utf-8")
        output = tmp / "pbx_codes.enriched.csv"
        result = subprocess.run(["pbx-codes", "enrich", str(source), "--preset", "asterisk-cdr-custom-pbx",
                                 "-o", str(output), "--no-progress", "--force"],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        names = cdr_csv_fields()
        return [dict(zip(names, values)) for values in csv.reader(io.StringIO(output.read_text(encoding="utf-8")))]

    def backfill_available(self) -> bool:
        return self.exec("plugin", "pbx-codes", "backfill", "--help", check=False).returncode == 0

    def backfill_store(self) -> subprocess.CompletedProcess[str]:
        """`pbx-codes backfill` in the plugin container: Asterisk's own CDRs (the volume, read-only there) into the
        store, for the calls the live path missed."""
        return self.exec("plugin", "pbx-codes", "backfill", "--pbx", "asterisk", "--store", STORE_URL,
                         "--config", "/etc/pbx-codes/pbx-codes.toml", f"{CDR_DIR}/pbx_codes.csv", timeout=300,
                         check=False)


def cdr_csv_fields() -> list[str]:
    """The field names of the project's CSV mapping (asterisk/cdr_custom.conf), as the Asterisk image has it."""
    text = (REPO / "asterisk" / "cdr_custom.conf").read_text(encoding="utf-8")
    section = text.split("[pbx_codes.csv]", 1)[1]
    line = next(ln for ln in section.splitlines() if ln.startswith("fields"))
    return [f.strip().split("(")[0] for f in line.split("=", 1)[1].split(",")]
