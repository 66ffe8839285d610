"""A real Asterisk on loopback for tests and demos: `AsteriskBench` puts the parts together.

The parts: the root filesystem (`rootfs`: cached, built, locked), the configuration rendered from the bench's ports
(`config`), the Asterisk process (`process`) and the CDR files it writes (`cdr`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pbx_codes.testbed.cdr import CDR_CSV, CDR_JSON, CDR_SQLITE, CdrFiles
from pbx_codes.testbed.config import BACKUP_TRUNKS, DEAD, QUALIFY_DOWN, ROUTES, SILENT, BenchConfig
from pbx_codes.testbed.process import AsteriskProcess
from pbx_codes.testbed.rootfs import PROVISION_SCRIPT, BenchError, default_rootfs, is_provisioned, provision


@dataclass(slots=True)
class AsteriskBench(BenchConfig):
    """One Asterisk process in the provisioned root filesystem, configured by this bench's ports (`BenchConfig`),
    its records read through `cdr`."""

    rootfs: Path = field(default_factory=default_rootfs)
    boot_timeout: float = 30.0
    lock_timeout: float = 0.0
    process: AsteriskProcess = field(init=False, repr=False)
    cdr: CdrFiles = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.process = AsteriskProcess(self.rootfs, boot_timeout=self.boot_timeout, lock_timeout=self.lock_timeout)
        self.cdr = CdrFiles(self.rootfs)

    # --- the root filesystem ----------------------------------------------------------------------------------

    def provision(self) -> float:
        """Build or reuse the cached root filesystem; returns the seconds it took."""
        return provision(self.rootfs)

    @property
    def provisioned(self) -> bool:
        return is_provisioned(self.rootfs)

    @property
    def etc(self) -> Path:
        return self.rootfs / "etc" / "asterisk"

    # --- the process ------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Choose the ports, write the configuration, start Asterisk and wait until AMI reports FullyBooted."""
        if self.process.started:
            return
        if not self.provisioned:
            raise BenchError(f"{self.rootfs} is not provisioned: run {PROVISION_SCRIPT}")
        try:
            self.process.lock()
            self.pick_ports()
            self.write_config(self.etc)
            self.cdr.clear()
        except BaseException:
            self.process.stop()
            raise
        self.process.start(self.ami_port, self.ami_user, self.ami_secret)

    def restart(self) -> None:
        self.process.restart()

    def stop(self) -> None:
        self.process.stop()

    @property
    def running(self) -> bool:
        return self.process.running

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def cli(self, command: str, timeout: float = 10) -> str:
        return self.process.cli(command, timeout)

    def __enter__(self) -> AsteriskBench:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- records and calls ------------------------------------------------------------------------------------

    def cdr_rows(self) -> list[dict[str, Any]]:
        return self.cdr.json_rows()

    def cdr_csv_rows(self) -> list[dict[str, str]]:
        return self.cdr.csv_rows()

    def cdr_sqlite_rows(self) -> list[dict[str, Any]]:
        return self.cdr.sqlite_rows()

    def wait_cdr_rows(self, src: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        return self.cdr.wait_rows(src, timeout)

    def place_call(self, code: str | int, phrase: str = "", catalog: str | None = None) -> list[dict[str, Any]]:
        """Place one real call through Asterisk to a sipp carrier answering ``code phrase``; return its CDR rows.

        ``code`` is a final SIP status (e.g. 486), ``200`` for an answered call, or ``"cancel"`` for a call the
        caller abandons while it rings.
        """
        from pbx_codes.testbed.sipp import run_call  # local import: sipp.py imports this module's helpers

        src = run_call(self, code=code, phrase=phrase, catalog=catalog)
        return self.cdr.wait_rows(src)


def place_call(code: str | int, phrase: str = "", catalog: str | None = None) -> list[dict[str, Any]]:
    """Provision (or reuse) the bench, start Asterisk, place one call, stop: for ``pbx-codes bench call``."""
    bench = AsteriskBench()
    if not bench.provisioned:
        bench.provision()
    with bench:
        return bench.place_call(code, phrase, catalog)


__all__ = ["AsteriskBench", "BACKUP_TRUNKS", "BenchError", "CDR_CSV", "CDR_JSON", "CDR_SQLITE", "DEAD",
           "QUALIFY_DOWN", "ROUTES", "SILENT", "default_rootfs", "place_call"]
