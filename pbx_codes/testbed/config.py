"""The bench's Asterisk configuration: its ports and accounts, and the files rendered from them.

Each start writes a fresh configuration with ports chosen at run time; the dialplan and CDR mappings are the ones
the project ships (``shipped`` is a link to the project's asterisk/ directory in a checkout and a copy in a wheel),
so the bench runs what a user installs.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from pbx_codes.testbed.rootfs import BenchError, free_port, free_port_both

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


@dataclass(slots=True)
class BenchConfig:
    """The ports and accounts of one bench Asterisk, listening on 127.0.0.1 only (0: chosen at start).

    ``carrier_port`` is where the trunk endpoint sends its INVITEs: the sipp carrier must listen there.
    """

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

    def pick_ports(self) -> None:
        """Choose every port still 0, each free now and different from the others."""
        self.sip_port = self.sip_port or free_port()
        self.ami_port = self.ami_port or free_port_both()
        self.carrier_port = self.carrier_port or free_port()
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
                extra="".join(_TRUNK.format(name=name, port=port,
                                            aor_extra=_QUALIFY_AOR if name == QUALIFY_DOWN else "")
                              for name, port in self.extra_trunks().items()),
            ),
            "extensions.conf": _EXTENSIONS_CONF.format(agi=self.agi_address),
            "cdr_manager.conf": "[general]\nenabled = yes\n",
            "rtp.conf": _RTP_CONF,
            **shipped,
        }
        return files

    def write_config(self, etc: Path) -> None:
        """Write the rendered files into ``etc`` (the root filesystem's /etc/asterisk)."""
        etc.mkdir(parents=True, exist_ok=True)
        for name, text in self.render_config().items():
            (etc / name).write_text(text, encoding="utf-8")


_ASTERISK_CONF = """\
; Generated by pbx_codes.testbed: the defaults of the Debian package, run as root in a chroot.
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
; Generated by pbx_codes.testbed: AMI on loopback, on a port chosen at start.
[general]
enabled = yes
port = {port}
bindaddr = 127.0.0.1
displayconnects = no
; Events carry a Timestamp: the rate benchmark measures hangup-to-annotation latency with it.
timestampevents = yes

"""

_PJSIP_CONF = """\
; Generated by pbx_codes.testbed: one UDP transport on loopback, the sipp caller and the sipp carriers.
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
; Generated by pbx_codes.testbed: the shipped dialplan, reached from the sipp caller.
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


__all__ = ["BACKUP_TRUNKS", "BenchConfig", "DEAD", "QUALIFY_DOWN", "ROUTES", "SHIPPED_CONFIG_DIR", "SHIPPED_FILES",
           "SILENT", "TEMPLATES_DIR"]
