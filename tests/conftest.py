"""Shared fixtures: the shipped catalogs loaded once, and where the shared reference material lives."""
from __future__ import annotations

from pathlib import Path

import pytest

from pbx_codes.catalog import CatalogSet, load_catalogs
from pbx_codes.resolve import Resolver

pytest_plugins = ["tests.conftest_asterisk", "tests.conftest_postgres"]

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def catalogs() -> CatalogSet:
    return load_catalogs()


@pytest.fixture()
def resolver(catalogs: CatalogSet) -> Resolver:
    return Resolver(catalogs, bindings={"lifecell-trunk": "lifecell", "gw-mango": "mango"})


def shared_dir(*parts: str) -> Path:
    """A folder of the shared reference material beside the repository (seeds, fixtures)."""
    return SHARED.joinpath(*parts)
