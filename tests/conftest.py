"""Shared fixtures: the shipped catalogs loaded once. Plugins: the skip policy (under CI=true nothing may skip),
the real Asterisk bench and PostgreSQL."""
from __future__ import annotations

import os
import sysconfig

import pytest

from pbx_codes.catalog import CatalogSet, load_catalogs
from pbx_codes.resolve import Resolver

pytest_plugins = ["pytester", "tests.conftest_skip_policy", "tests.conftest_asterisk", "tests.conftest_postgres"]


def pytest_configure(config: pytest.Config) -> None:
    """The tools installed with the test extras (hadolint, the pbx-codes command) live beside this interpreter:
    find them as an activated virtualenv would, however pytest was started."""
    scripts = sysconfig.get_path("scripts")
    path = os.environ.get("PATH", "")
    if scripts not in path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([scripts, path]) if path else scripts


@pytest.fixture(scope="session")
def catalogs() -> CatalogSet:
    return load_catalogs()


@pytest.fixture()
def resolver(catalogs: CatalogSet) -> Resolver:
    return Resolver(catalogs, bindings={"lifecell-trunk": "lifecell", "gw-mango": "mango"})
