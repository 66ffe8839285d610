"""A real Asterisk on loopback for tests and demos: a Debian sid root filesystem run with chroot.

Why a chroot and not the host's Asterisk: the bench must not touch a PBX the user runs, needs a recent Asterisk
(TechCause in Hangup events exists since 22.7), and must work without a container runtime. The root filesystem is
built once by ``scripts/provision-asterisk-rootfs.sh`` and cached; each start writes a fresh configuration with
ports chosen at run time, so several checkouts can share one cache (one Asterisk at a time: a lock file says so).
"""
from __future__ import annotations

import csv
import fcntl
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pbx_codes.errors import PbxCodesError

REPO_DIR = Path(__file__).resolve().parents[2]
PROVISION_SCRIPT = REPO_DIR / "scripts" / "provision-asterisk-rootfs.sh"
#: The project's asterisk/ directory, shipped inside the package (``shipped`` is a link to it in a checkout and a
#: copy in a wheel), so an installed ``pbx-codes bench call`` runs what a user installs.
SHIPPED_CONFIG_DIR = Path(__file__).resolve().parent / "shipped"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

#: Files copied verbatim from the project's asterisk/ directory: the bench runs what a user installs.
SHIPPED_FILES = ("extensions_pbx_codes.conf", "cdr.conf", "cdr_custom.conf", "cdr_sqlite3_custom.conf")

#: The bench's extra trunk endpoints (see `extra_trunks`); a failover chain dials ``trunk`` then the backups.
DEAD = "dead"
SILENT = "silent"
QUALIFY_DOWN = "qualifydown"
BACKUP_TRUNKS = ("backup", "backup2", "backup3")
ROUTES = ("trunk", *BACKUP_TRUNKS)

CDR_JSON = "var/log/asterisk/cdr-custom/pbx_codes.json"
CDR_CSV = "var/log/asterisk/cdr-custom/pbx_codes.csv"
CDR_SQLITE = "var/log/asterisk/pbx_codes.db"


def default_rootfs() -> Path:
    """Where the provisioned root filesystem is cached (PBX_CODES_ROOTFS overrides)."""
    env = os.environ.get("PBX_CODES_ROOTFS")
    return Path(env) if env else Path.home() / ".cache" / "pbx-codes" / "asterisk-sid"


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


class BenchError(PbxCodesError, RuntimeError):
    """The bench could not be provisioned, started or driven."""


@dataclass(slots=True)
class AsteriskBench:
    """One Asterisk process in the provisioned root filesystem, listening on 127.0.0.1 only.

    ``carrier_port`` is where the trunk endpoint sends its INVITEs: the sipp carrier must listen there.
    """

    rootfs: Path = field(default_factory=default_rootfs)
    sip_port: int = 0
    ami_port: int = 0
    carrier_port: int = 0
    #: Ports of the extra trunks: nothing listens on `dead_port` and `qualify_port`; the bench binds
    #: `silent_port` during a call and never answers; `backup_ports` are the carriers of a failover chain.
    dead_port: int = 0
    qualify_port: int = 0
    silent_port: int = 0
    backup_ports: tuple[int, ...] = ()
    agi_address: str = field(default_factory=lambda: os.environ.get("PBX_CODES_AGI", "127.0.0.1:4573"))
    ami_user: str = "pbx-codes"
    ami_secret: str = field(default_factory=lambda: os.environ.get("PBX_CODES_AMI_SECRET") or secrets.token_hex(12))
    trunk_catalog: str = "bench-trunk"
    boot_timeout: float = 30.0
    lock_timeout: float = 0.0
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _lock: IO[str] | None = field(default=None, init=False, repr=False)

    # --- provisioning -------------------------------------------------------------------------------------------

    def provision(self) -> float:
        """Build or reuse the cached root filesystem; returns the seconds it took."""
        if os.geteuid() != 0:
            raise BenchError("the Asterisk bench needs root (debootstrap and chroot)")
        if not PROVISION_SCRIPT.is_file():
            raise BenchError(f"building a root filesystem needs a checkout of pbx-codes ({PROVISION_SCRIPT.name}); "
                             "an installed package uses one built already (PBX_CODES_ROOTFS)")
        started = time.monotonic()
        result = subprocess.run(
            ["bash", str(PROVISION_SCRIPT), str(self.rootfs)],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        if result.returncode != 0:
            raise BenchError(f"provisioning failed ({result.returncode}):\n{result.stderr[-4000:]}")
        return time.monotonic() - started

    @property
    def provisioned(self) -> bool:
        return (self.rootfs / ".provisioned").is_file() and (self.rootfs / "usr/sbin/asterisk").is_file()

    # --- configuration ------------------------------------------------------------------------------------------

    @property
    def etc(self) -> Path:
        return self.rootfs / "etc" / "asterisk"

    def render_config(self) -> dict[str, str]:
        """The bench's configuration files by name: the shipped ones plus the bench's ports and endpoints."""
        shipped = {name: (SHIPPED_CONFIG_DIR / name).read_text(encoding="utf-8") for name in SHIPPED_FILES}
        manager_user = (SHIPPED_CONFIG_DIR / "manager_pbx_codes.conf").read_text(encoding="utf-8")
        if "secret = CHANGE-ME" not in manager_user:
            raise BenchError("asterisk/manager_pbx_codes.conf lost its 'secret = CHANGE-ME' placeholder")
        manager_user = manager_user.replace("secret = CHANGE-ME", f"secret = {self.ami_secret}")
        if self.ami_user != "pbx-codes":
            manager_user = manager_user.replace("[pbx-codes]", f"[{self.ami_user}]")
        files = {
            "asterisk.conf": _ASTERISK_CONF,
            "logger.conf": _LOGGER_CONF,
            "modules.conf": (TEMPLATES_DIR / "modules.conf").read_text(encoding="utf-8"),
            "manager.conf": _MANAGER_CONF.format(port=self.ami_port) + manager_user,
            "pjsip.conf": _PJSIP_CONF.format(
                sip_port=self.sip_port, carrier_port=self.carrier_port, catalog=self.trunk_catalog,
                extra="".join(_TRUNK.format(name=name, port=port, aor_extra=_QUALIFY_AOR if name == QUALIFY_DOWN else "")
                              for name, port in self.extra_trunks().items()),
            ),
            "extensions.conf": _EXTENSIONS_CONF.format(agi=self.agi_address),
            "cdr_manager.conf": "[general]\nenabled = yes\n",
            "rtp.conf": _RTP_CONF,
            **shipped,
        }
        return files

    def _pick_trunk_ports(self) -> None:
        busy = {self.sip_port, self.ami_port, self.carrier_port}

        def pick() -> int:
            while (port := free_port()) in busy:
                continue
            busy.add(port)
            return port

        self.dead_port = self.dead_port or pick()
        self.qualify_port = self.qualify_port or pick()  # its own: contacts with one URI share one qualify status
        self.silent_port = self.silent_port or pick()
        if len(self.backup_ports) < len(BACKUP_TRUNKS):
            self.backup_ports = tuple(pick() for _ in BACKUP_TRUNKS)

    def extra_trunks(self) -> dict[str, int]:
        """The bench's trunk endpoints besides ``trunk``, by name, with the port their contact points at."""
        return {DEAD: self.dead_port, SILENT: self.silent_port, QUALIFY_DOWN: self.qualify_port,
                **dict(zip(BACKUP_TRUNKS, self.backup_ports))}

    def route_port(self, trunk: str) -> int:
        """The carrier port of a route of a failover chain (``trunk``, ``backup``, ``backup2`` ...)."""
        if trunk == "trunk":
            return self.carrier_port
        return self.extra_trunks()[trunk]

    def write_config(self) -> None:
        self.etc.mkdir(parents=True, exist_ok=True)
        for name, text in self.render_config().items():
            (self.etc / name).write_text(text, encoding="utf-8")

    # --- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Write the configuration, start Asterisk and wait until AMI reports FullyBooted."""
        if self._process is not None:
            return
        if not self.provisioned:
            raise BenchError(f"{self.rootfs} is not provisioned: run {PROVISION_SCRIPT}")
        self._take_lock()
        try:
            self.sip_port = self.sip_port or free_port()
            self.ami_port = self.ami_port or free_port_both()
            self.carrier_port = self.carrier_port or free_port()
            self._pick_trunk_ports()
            self.write_config()
            self._clear_cdr_files()
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
        """Stop this bench's Asterisk (its PID only) and start it again, as a PBX restart looks to pbx-codes.

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
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The PID of the Asterisk this object started (a restart changes it), None when it is not running."""
        return self._process.pid if self.running and self._process is not None else None

    def __enter__(self) -> AsteriskBench:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _take_lock(self) -> None:
        """One Asterisk per root filesystem: wait up to `lock_timeout` seconds for another bench to finish."""
        lock = open(self.rootfs / ".bench.lock", "w")  # noqa: SIM115
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    lock.close()
                    raise BenchError(f"another Asterisk bench is running in {self.rootfs}") from None
                time.sleep(0.2)
        self._lock = lock

    def _clear_cdr_files(self) -> None:
        """Each start begins with empty CDR files and log, so rows and log lines belong to this run."""
        for rel in (CDR_JSON, CDR_CSV, CDR_SQLITE, "var/log/asterisk/full", "var/log/asterisk/bench-console.log"):
            (self.rootfs / rel).unlink(missing_ok=True)

    def _wait_fully_booted(self) -> None:
        """Log in to AMI and wait for FullyBooted: AMI accepts a login ~0.4 s before Asterisk can take actions."""
        deadline = time.monotonic() + self.boot_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise BenchError(f"asterisk exited with {self._process.returncode}; see {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.ami_port), timeout=2) as sock:
                    sock.settimeout(max(0.5, deadline - time.monotonic()))
                    login = (
                        f"Action: Login\r\nUsername: {self.ami_user}\r\nSecret: {self.ami_secret}\r\n"
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

    @property
    def log_path(self) -> Path:
        return self.rootfs / "var/log/asterisk/full"

    def cli(self, command: str, timeout: float = 10) -> str:
        """Run one CLI command on the running Asterisk (for diagnostics: ``pjsip show endpoints``)."""
        result = subprocess.run(
            ["chroot", str(self.rootfs), "/usr/sbin/asterisk", "-rx", command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return result.stdout + result.stderr

    # --- CDR ------------------------------------------------------------------------------------------------------

    def cdr_rows(self) -> list[dict[str, Any]]:
        """Every record cdr_custom wrote as JSON, oldest first (one dict per line of pbx_codes.json)."""
        path = self.rootfs / CDR_JSON
        if not path.exists():
            return []
        rows = []
        for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
            if line.strip():
                rows.append(loads_cdr_json(line))
        return rows

    def cdr_csv_rows(self) -> list[dict[str, str]]:
        """The same records from the CSV file, keyed by the field names of cdr_custom.conf."""
        path = self.rootfs / CDR_CSV
        if not path.exists():
            return []
        names = _csv_field_names()
        with path.open(encoding="utf-8", errors="replace", newline="") as fh:
            return [dict(zip(names, row, strict=True)) for row in csv.reader(fh) if row]

    def cdr_sqlite_rows(self) -> list[dict[str, Any]]:
        """The same records from cdr_sqlite3_custom's database."""
        path = self.rootfs / CDR_SQLITE
        if not path.exists():
            return []
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            con.row_factory = sqlite3.Row
            # A carrier can send bytes that are not UTF-8; Asterisk stores them as they came.
            con.text_factory = lambda raw: raw.decode("utf-8", "replace")
            return [dict(row) for row in con.execute("SELECT * FROM cdr ORDER BY rowid")]
        finally:
            con.close()

    def wait_cdr_rows(self, src: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The CDR records of the call whose caller id number is ``src``, once Asterisk has written them.

        Asterisk posts a call's records together, a few ms after the A-leg's Hangup; wait until some exist and the
        file has stopped growing for two polls.
        """
        deadline = time.monotonic() + timeout
        path = self.rootfs / CDR_JSON
        last_size = -1
        while time.monotonic() < deadline:
            size = path.stat().st_size if path.exists() else 0
            rows = [row for row in self.cdr_rows() if row.get("src") == src]
            if rows and size == last_size:
                return rows
            last_size = size
            time.sleep(0.1)
        return [row for row in self.cdr_rows() if row.get("src") == src]

    # --- calls ----------------------------------------------------------------------------------------------------

    def place_call(self, code: str | int, phrase: str = "", catalog: str | None = None) -> list[dict[str, Any]]:
        """Place one real call through Asterisk to a sipp carrier answering ``code phrase``; return its CDR rows.

        ``code`` is a final SIP status (e.g. 486), ``200`` for an answered call, or ``"cancel"`` for a call the
        caller abandons while it rings.
        """
        from pbx_codes.bench.sipp import run_call  # local import: sipp.py imports this module's helpers

        src = run_call(self, code=code, phrase=phrase, catalog=catalog)
        return self.wait_cdr_rows(src)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the one process the bench started, SIGKILL if it overstays."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def loads_cdr_json(line: str) -> dict[str, Any]:
    """One line of cdr_custom's JSON mapping.

    Asterisk 22 escapes ``"`` in a value as ``\\"`` but leaves ``\\`` alone, so a carrier phrase with a backslash
    makes the line invalid JSON (and a phrase ending in one makes it ambiguous to any JSON parser). Such a line is
    read by its known field names instead: each value runs to the next ``,"<field>":``, and only ``\\"`` is undone.
    """
    try:
        return dict(json.loads(line))
    except json.JSONDecodeError:
        pass
    names = _field_names("pbx_codes.json")
    row: dict[str, Any] = {}
    body = line.rstrip("\r\n")
    if not body.startswith("{"):
        raise BenchError(f"not a cdr_custom JSON record: {line[:120]!r}")
    # A record over Asterisk's 1 KB is cut, closing brace and all: keep the fields that made it.
    complete = body.endswith("}")
    body = body[1:-1] if complete else body[1:]
    pos = 0
    for index, name in enumerate(names):
        key = f'"{name}":'
        if not body.startswith(key, pos):
            break
        pos += len(key)
        nxt = body.find(f',"{names[index + 1]}":', pos) if index + 1 < len(names) else len(body)
        raw = body[pos:nxt if nxt >= 0 else len(body)]
        if len(raw) >= 2 and raw[0] == raw[-1] == '"' and nxt >= 0 and (complete or index + 1 < len(names)):
            row[name] = raw[1:-1].replace('\\"', '"')
        elif raw.startswith('"'):
            row[name] = raw[1:].replace('\\"', '"')  # the value the record was cut in
        else:
            try:
                row[name] = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                row[name] = raw
        if nxt < 0:
            break
        pos = nxt + 1
    return row


def _field_names(section_name: str) -> list[str]:
    """The field names of a cdr_custom.conf mapping, in order."""
    text = (SHIPPED_CONFIG_DIR / "cdr_custom.conf").read_text(encoding="utf-8")
    section = text.split(f"[{section_name}]", 1)[1]
    for line in section.splitlines():
        if line.startswith("fields"):
            return [part.strip().split("(")[0] for part in line.split("=", 1)[1].split(",")]
    raise BenchError(f"cdr_custom.conf has no fields line for {section_name}")


def _csv_field_names() -> list[str]:
    """The field names of the [pbx_codes.csv] mapping, in order (the CSV file has no header row)."""
    return _field_names("pbx_codes.csv")


def place_call(code: str | int, phrase: str = "", catalog: str | None = None) -> list[dict[str, Any]]:
    """Provision (or reuse) the bench, start Asterisk, place one call, stop: for ``pbx-codes bench call``."""
    bench = AsteriskBench()
    if not bench.provisioned:
        bench.provision()
    with bench:
        return bench.place_call(code, phrase, catalog)


_ASTERISK_CONF = """\
; Generated by pbx_codes.bench: the defaults of the Debian package, run as root in a chroot.
[options]
verbose = 3
debug = 0
documentation_language = en_US
hideconnect = yes
"""

_LOGGER_CONF = """\
[general]
dateformat = %F %T.%3q
[logfiles]
full => notice,warning,error,verbose
"""

_RTP_CONF = """\
[general]
rtpstart = 30000
rtpend = 31000
"""

_MANAGER_CONF = """\
; Generated by pbx_codes.bench: AMI on loopback, on a port chosen at start.
[general]
enabled = yes
port = {port}
bindaddr = 127.0.0.1
displayconnects = no
; Events carry a Timestamp: the rate benchmark measures hangup-to-annotation latency with it.
timestampevents = yes

"""

_PJSIP_CONF = """\
; Generated by pbx_codes.bench: one UDP transport on loopback, the sipp caller and the sipp carriers.
[global]
type = global
user_agent = pbx-codes-bench

; Short SIP timers: a trunk that never answers costs 64 x T1 (32 s with Asterisk's default T1 of 500 ms) before
; PJSIP gives up with a 408 of its own. On loopback nothing is ever lost, so T1 = 100 ms (Asterisk's minimum) keeps
; the unreachable shape affordable to test: 6.4 s.
[system]
type = system
timer_t1 = 100
timer_b = 6400

[bench-udp]
type = transport
protocol = udp
bind = 127.0.0.1:{sip_port}

; The caller: any request from 127.0.0.1 that is not in a dialog. Its From user becomes the CDR's src, which is
; how the bench finds the records of each call.
[caller]
type = endpoint
transport = bench-udp
context = bench-from-caller
disallow = all
allow = ulaw
direct_media = no
rtp_symmetric = yes

[caller]
type = identify
endpoint = caller
match = 127.0.0.1

; The carrier: sipp playing a trunk that fails the call with the scenario's code and phrase.
[trunk]
type = endpoint
transport = bench-udp
context = bench-from-trunk
disallow = all
allow = ulaw
direct_media = no
aors = trunk
set_var = PBX_CODES_CATALOG={catalog}

[trunk]
type = aor
contact = sip:127.0.0.1:{carrier_port}
{extra}"""

#: A trunk endpoint of the bench: name, contact port, and extra aor lines.
_TRUNK = """
[{name}]
type = endpoint
transport = bench-udp
context = bench-from-trunk
disallow = all
allow = ulaw
direct_media = no
aors = {name}

[{name}]
type = aor
contact = sip:127.0.0.1:{port}
{aor_extra}"""

#: The qualify-down trunk: its contact never answers OPTIONS, so qualify marks it Unavailable soon after start
#: and a Dial to it creates no channel at all (CHANUNAVAIL before any INVITE). Asterisk schedules the first qualify
#: at a random point of the first interval: a short interval makes "soon" about a second.
_QUALIFY_AOR = "qualify_frequency = 1\nqualify_timeout = 0.5\n"

_EXTENSIONS_CONF = """\
; Generated by pbx_codes.bench: the shipped dialplan, reached from the sipp caller.
[general]
static = yes
writeprotect = yes

[globals]
PBX_CODES_AGI = agi://{agi}

#include extensions_pbx_codes.conf

; The bench's caller chooses, in headers: the catalog (X-PBX-Codes-Catalog; without it the trunk's set_var is
; used), the trunk (X-PBX-Codes-Trunk), the dial timeout (X-PBX-Codes-Dial-Timeout) and a failover chain of trunks
; (X-PBX-Codes-Routes: trunk&backup&..., or "default" for the example's own), through the shipped failover example.
[bench-from-caller]
exten => _[+0-9].,1,Set(PBX_CODES_CATALOG=${{PJSIP_HEADER(read,X-PBX-Codes-Catalog)}})
 same => n,Set(PBX_CODES_TRUNK=${{FILTER(a-z0-9,${{PJSIP_HEADER(read,X-PBX-Codes-Trunk)}})}})
 same => n,GotoIf($["${{PBX_CODES_TRUNK}}" != ""]?timeout)
 same => n,Set(PBX_CODES_TRUNK=trunk)
 same => n(timeout),Set(PBX_CODES_DIAL_TIMEOUT=${{FILTER(0-9,${{PJSIP_HEADER(read,X-PBX-Codes-Dial-Timeout)}})}})
 same => n,GotoIf($["${{PBX_CODES_DIAL_TIMEOUT}}" != ""]?routes)
 same => n,Set(PBX_CODES_DIAL_TIMEOUT=20)
 same => n(routes),Set(PBX_CODES_ROUTES=${{FILTER(a-z0-9&,${{PJSIP_HEADER(read,X-PBX-Codes-Routes)}})}})
 same => n,GotoIf($["${{PBX_CODES_ROUTES}}" != ""]?failover)
 same => n,Goto(pbx-codes-outbound,${{EXTEN}},1)
 ; "default": the example exactly as shipped (its own routes, trunk then backup).
 same => n(failover),ExecIf($["${{PBX_CODES_ROUTES}}" = "default"]?Set(PBX_CODES_ROUTES=))
 same => n,Goto(pbx-codes-failover-example,${{EXTEN}},1)

[bench-from-trunk]
exten => _X.,1,Hangup(21)
"""
