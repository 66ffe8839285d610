"""The TOML configuration: defaults, bindings, and clear errors for what does not fit."""
from __future__ import annotations

from pathlib import Path

import pytest

from pbx_codes.config import ConfigError, load_config


def test_defaults_without_a_file() -> None:
    config = load_config(None)
    assert config.language == "en" and config.default_catalog == "sip" and not config.bindings


def test_file_with_bindings_and_sections(tmp_path: Path) -> None:
    path = tmp_path / "pbx-codes.toml"
    path.write_text('language = "uk"\ncatalog_dirs = ["catalogs"]\n[bindings]\ntrunk1 = "lifecell"\n'
                    '[asterisk]\nami = "127.0.0.1:5038"\n', encoding="utf-8")
    config = load_config(path)
    assert config.language == "uk" and config.bindings == {"trunk1": "lifecell"}
    assert config.catalog_dirs == (str(tmp_path / "catalogs"),)
    assert config.asterisk == {"ami": "127.0.0.1:5038", "language": "uk"}


def test_the_top_level_language_is_every_parts_default_and_a_section_may_override_it(tmp_path: Path) -> None:
    path = tmp_path / "pbx-codes.toml"
    path.write_text('language = "uk"\n[freeswitch]\nhook_port = 8089\n[console]\n[asterisk]\nlanguage = "ru"\n',
                    encoding="utf-8")
    config = load_config(path)
    assert (config.freeswitch["language"], config.console["language"], config.asterisk["language"]) == (
        "uk", "uk", "ru")
    path.write_text('[freeswitch]\nlanguage = "de"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[freeswitch\] language must be one of"):
        load_config(path)


@pytest.mark.parametrize("text, message", [
    ('language = "de"', "language must be one of"),
    ('lang = "uk"', "unknown key"),
    ('[bindings]\nx = 1', "bindings"),
    ('asterisk = 5', r"\[asterisk\] must be a table"),
    ('language = ', "not valid TOML"),
])
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_shipped_example_config_is_accepted_by_every_part(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/pbx-codes.example.toml is what users copy: the top level and each section must parse."""
    from pbx_codes.adapters.esl_listener import client_config
    from pbx_codes.adapters.ami_listener import ami_settings
    from pbx_codes.console.settings import parse_console_settings
    from pbx_codes.sinks.alerts import parse_rule
    from pbx_codes.store.store import parse_store_settings

    config = load_config(Path(__file__).resolve().parents[1] / "docs" / "pbx-codes.example.toml")
    assert config.bindings["lifecell"] == "lifecell" and config.language == "uk"
    assert ami_settings(config.asterisk["ami"]).port == 5038
    assert parse_console_settings(config.console).port == 8088
    assert parse_store_settings(config.store).url.startswith("sqlite:///")
    assert [(r.category, r.measure) for r in (parse_rule(a, i) for i, a in enumerate(config.alerts))] == [
        ("capacity", None), ("billing", None), ("*", "ner")]
    monkeypatch.setenv("PBX_CODES_ESL_PASSWORD", "x")
    assert client_config(config.freeswitch).port == 8021
