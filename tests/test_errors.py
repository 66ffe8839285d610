"""One error model: every exception class pbx-codes defines is a kind of `PbxCodesError`, the old names still import
and still are the built-in exceptions their callers catch; the CLI maps every kind to one line and exit 2."""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import pbx_codes
from pbx_codes import errors


def _package_exceptions() -> list[type[BaseException]]:
    found = []
    for info in pkgutil.walk_packages(pbx_codes.__path__, "pbx_codes."):
        if ".bench.shipped" in info.name or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith("pbx_codes"):
                found.append(obj)
    return sorted(set(found), key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


@pytest.mark.parametrize("cls", _package_exceptions(), ids=lambda cls: f"{cls.__module__}.{cls.__qualname__}")
def test_every_exception_class_of_the_package_is_a_pbx_codes_error(cls: type[BaseException]) -> None:
    assert issubclass(cls, errors.PbxCodesError), cls.__mro__


@pytest.mark.parametrize(("module", "name", "kind", "builtin"), [
    ("pbx_codes.adapters.esl_client", "EslAuthError", errors.AuthenticationError, ConnectionError),
    ("pbx_codes.adapters.ami_client", "AmiAuthError", errors.AuthenticationError, ConnectionError),
    ("pbx_codes.adapters.ami_client", "AmiUnreachable", errors.PbxConnectionError, ConnectionError),
    ("pbx_codes.adapters.esl_client", "EslUnreachable", errors.PbxConnectionError, ConnectionError),
    ("pbx_codes.adapters.esl_client", "EslCommandError", errors.CommandError, RuntimeError),
    ("pbx_codes.adapters.agi_server", "AgiSessionClosed", errors.PbxConnectionError, ConnectionError),
    ("pbx_codes.protocols", "ProtocolError", errors.ProtocolError, ValueError),
    ("pbx_codes.protocols.esl", "ProtocolError", errors.ProtocolError, ValueError),
    ("pbx_codes.protocols.esl", "CommandInjectionError", errors.InjectionError, ValueError),
    ("pbx_codes.config", "ConfigError", errors.ConfigError, ValueError),
    ("pbx_codes.catalog", "CatalogError", errors.CatalogError, ValueError),
    ("pbx_codes.store.store", "StoreConfigError", errors.ConfigError, ValueError),
    ("pbx_codes.sinks.alerts", "AlertConfigError", errors.ConfigError, ValueError),
    ("pbx_codes.quality.classes", "QualityConfigError", errors.ConfigError, ValueError),
    ("pbx_codes.adapters.secrets", "SecretError", errors.ConfigError, ValueError),
    ("pbx_codes.enrich.files", "EnrichError", errors.InputError, ValueError),
    ("pbx_codes.enrich.mapping", "MappingError", errors.InputError, ValueError),
    ("pbx_codes.backfill.readers", "BackfillError", errors.InputError, ValueError),
    ("pbx_codes.catalog.sql_export", "SqlExportError", errors.InputError, ValueError),
    ("pbx_codes.cli.common", "CliError", errors.InputError, ValueError),
])
def test_an_old_name_still_imports_as_its_kind_and_its_builtin(module: str, name: str, kind: type,
                                                               builtin: type) -> None:
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, kind) and issubclass(cls, builtin)


def test_the_two_protocol_errors_are_one_class() -> None:
    from pbx_codes.protocols import ProtocolError
    from pbx_codes.protocols.esl import ProtocolError as EslProtocolError

    assert ProtocolError is EslProtocolError is errors.ProtocolError


@pytest.mark.parametrize("text", ["Exten: 100\r\nAction: Originate", "a\nb", "nul\x00"])
def test_a_line_break_in_an_ami_or_agi_value_is_an_injection_error(text: str) -> None:
    from pbx_codes.protocols.agi import quote_arg
    from pbx_codes.protocols.ami import build_action

    with pytest.raises(errors.InjectionError):
        build_action("Setvar", Variable="pbx_reason", Value=text)
    with pytest.raises(errors.InjectionError):
        quote_arg(text)
