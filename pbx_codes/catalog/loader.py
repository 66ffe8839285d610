"""Load catalog files: the shipped ones from package data, the user's from directories.

Loading is all-or-nothing: every file is parsed and validated before any catalog is handed out, so a broken user
file never leaves the program with half a catalog.
"""
from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from pbx_codes.catalog.schema import Catalog, CatalogError, build_catalog

BUILTIN_PACKAGE = "pbx_codes.catalog.data"


@dataclass(frozen=True, slots=True)
class CatalogSet:
    """All loaded catalogs by id; the resolver's only source of meaning."""

    catalogs: Mapping[str, Catalog] = field(default_factory=lambda: MappingProxyType({}))

    def __getitem__(self, catalog_id: str) -> Catalog:
        return self.catalogs[catalog_id]

    def __contains__(self, catalog_id: object) -> bool:
        return catalog_id in self.catalogs

    def __iter__(self) -> Iterator[Catalog]:
        return iter(self.catalogs.values())

    def __len__(self) -> int:
        return len(self.catalogs)

    def get(self, catalog_id: str | None) -> Catalog | None:
        return self.catalogs.get(catalog_id) if catalog_id else None

    def ids(self) -> list[str]:
        return list(self.catalogs)


#: The largest catalog file read (the shipped ones are under 50 KB): a bigger one is refused before it is parsed, so
#: a wrong path or a hostile file cannot take seconds and hundreds of MB at start-up.
MAX_CATALOG_BYTES = 4 * 1024 * 1024


def read_catalog_bytes(path: Path | str, limit: int = MAX_CATALOG_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, else CatalogError naming the file.

    Opened without blocking and checked on the open descriptor, so a FIFO or a device named ``x.toml`` is refused
    instead of hanging start-up, even if it replaced a regular file after the directory was listed."""
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise CatalogError(name, f"cannot be read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CatalogError(name, "is not a regular file")
        if info.st_size > limit:
            raise CatalogError(name, f"is larger than {limit:,} bytes ({info.st_size:,})")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise CatalogError(name, f"cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > limit:           # it grew after the check
        raise CatalogError(name, f"is larger than {limit:,} bytes")
    return data


def parse_file(path: Path | str, text: str | None = None) -> Catalog:
    """Parse and validate one catalog file (fallback names are checked when a set is built)."""
    name = str(path)
    try:
        if text is None:
            text = read_catalog_bytes(path).decode("utf-8")
        raw = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise CatalogError(name, f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(name, f"is not valid TOML: {exc}") from None
    except RecursionError:
        raise CatalogError(name, "is not valid TOML: arrays or tables nested too deeply") from None
    except ValueError as exc:      # e.g. an integer of more digits than Python converts
        raise CatalogError(name, f"is not valid TOML: {exc}") from None
    try:
        return build_catalog(name, raw)
    except RecursionError:
        raise CatalogError(name, "values nested too deeply") from None


def _builtin_files() -> list[tuple[str, str]]:
    root = resources.files(BUILTIN_PACKAGE)
    return sorted(
        (f"{BUILTIN_PACKAGE.replace('.', '/')}/{item.name}", item.read_text(encoding="utf-8"))
        for item in root.iterdir()
        if item.name.endswith(".toml")
    )


def user_files(directories: Iterable[Path | str]) -> list[Path]:
    """The `*.toml` files of the user's catalog directories, in a stable order."""
    files: list[Path] = []
    for directory in directories:
        base = Path(directory)
        if not base.is_dir():
            raise CatalogError(str(base), "is not a directory of catalog files")
        files.extend(sorted(base.glob("*.toml")))
    return files


def build_set(catalogs: Iterable[Catalog]) -> CatalogSet:
    """Check ids are unique and fallbacks exist, then freeze the set."""
    by_id: dict[str, Catalog] = {}
    for catalog in catalogs:
        if catalog.id in by_id:
            raise CatalogError(catalog.path,
                               f"catalog id {catalog.id!r} is already loaded from {by_id[catalog.id].path}", None, "id")
        by_id[catalog.id] = catalog
    for catalog in by_id.values():
        if catalog.fallback is not None and catalog.fallback not in by_id:
            raise CatalogError(catalog.path, f"names catalog {catalog.fallback!r}, which is not loaded", None,
                               "fallback")
        if catalog.fallback == catalog.id:
            raise CatalogError(catalog.path, "a catalog cannot fall back to itself", None, "fallback")
    return CatalogSet(MappingProxyType(by_id))


def load_catalogs(extra_dirs: Iterable[Path | str] = (), *, builtin: bool = True) -> CatalogSet:
    """The shipped catalogs plus every catalog in `extra_dirs`; raises CatalogError and loads nothing if any is
    broken."""
    parsed: list[Catalog] = []
    if builtin:
        parsed.extend(parse_file(name, text) for name, text in _builtin_files())
    parsed.extend(parse_file(path) for path in user_files(extra_dirs))
    return build_set(parsed)


def validate_file(path: Path | str, against: CatalogSet | None = None) -> Catalog:
    """Check one user file as `load_catalogs` would, including that its fallback exists among `against`."""
    catalog = parse_file(path)
    known = dict(against.catalogs) if against is not None else {}
    known.pop(catalog.id, None)
    build_set([*known.values(), catalog])
    return catalog
