"""The TOML configuration: defaults, bindings, and clear errors for what does not fit."""
from __future__ import annotations

import logging
import os
import re
import threading
import tomllib
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest

from pbx_codes.config import (
    AgiSection,
    AlertSection,
    AmiSection,
    AsteriskSection,
    Config,
    ConfigError,
    ConsoleSection,
    EslSection,
    FreeswitchSection,
    HookSection,
    QualityClass,
    QualitySection,
    Rfc6076Section,
    StoreSection,
    load_config,
    parse_config,
    section_keys,
)


def test_defaults_without_a_file() -> None:
    config = load_config(None)
    assert config.language == "en" and config.default_catalog == "sip" and not config.bindings


def test_file_with_bindings_and_sections(tmp_path: Path) -> None:
    path = tmp_path / "pbx-codes.toml"
    path.write_text('language = "uk"\ncatalog_dirs = ["catalogs"]\n[bindings]\ntrunk1 = "lifecell"\n'
                    '[asterisk.ami]\nport = 5039\n', encoding="utf-8")
    config = load_config(path)
    assert config.language == "uk" and config.bindings == {"trunk1": "lifecell"}
    assert config.catalog_dirs == (str(tmp_path / "catalogs"),)
    assert config.asterisk == AsteriskSection(language="uk", ami=AmiSection(port=5039))


def test_the_top_level_language_is_every_parts_default_and_a_section_may_override_it(tmp_path: Path) -> None:
    path = tmp_path / "pbx-codes.toml"
    path.write_text('language = "uk"\n[freeswitch]\nhook_port = 8089\n[console]\n[asterisk]\nlanguage = "ru"\n',
                    encoding="utf-8")
    config = load_config(path)
    assert (config.freeswitch.language, config.console.language, config.asterisk.language) == (
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
    from pbx_codes.console.settings import parse_console_settings
    from pbx_codes.runtime.ami_listener import ami_settings
    from pbx_codes.runtime.esl_listener import client_config
    from pbx_codes.sinks.alerts import parse_rule
    from pbx_codes.store.store import parse_store_settings

    config = load_config(Path(__file__).resolve().parents[1] / "docs" / "pbx-codes.example.toml")
    assert config.bindings["lifecell"] == "lifecell" and config.language == "uk"
    assert ami_settings(config.asterisk.ami).port == 5038
    assert parse_console_settings(config.console).port == 8088
    assert parse_store_settings(config.store).url.startswith("sqlite:///")
    assert [(r.category, r.measure) for r in (parse_rule(a, i) for i, a in enumerate(config.alerts))] == [
        ("capacity", None), ("billing", None), ("*", "ner")]
    monkeypatch.setenv("PBX_CODES_ESL_PASSWORD", "x")
    assert client_config(config.freeswitch).port == 8021


# ---- one reader for every section: typos, wrong types, older names ---------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "pbx-codes.example.toml"

#: Every table of the file: (how an error names it, the dataclass, a TOML text that puts `KEY = VALUE` in it).
SECTIONS = {
    "top level": (Config, "{line}\n"),
    "[asterisk]": (AsteriskSection, "[asterisk]\n{line}\n"),
    "[asterisk.ami]": (AmiSection, "[asterisk.ami]\n{line}\n"),
    "[asterisk.agi]": (AgiSection, "[asterisk.agi]\n{line}\n"),
    "[freeswitch]": (FreeswitchSection, "[freeswitch]\n{line}\n"),
    "[freeswitch.esl]": (EslSection, "[freeswitch.esl]\n{line}\n"),
    "[freeswitch.hook]": (HookSection, "[freeswitch.hook]\n{line}\n"),
    "[store]": (StoreSection, "[store]\n{line}\n"),
    "[console]": (ConsoleSection, "[console]\n{line}\n"),
    "[[alerts]] #2": (AlertSection, '[[alerts]]\ntrunk = "*"\n[[alerts]]\n{line}\n'),
    "[quality]": (QualitySection, "[quality]\n{line}\n"),
    "[[quality.class]] #1": (QualityClass, "[[quality.class]]\n{required}{line}\n"),
    "[quality.rfc6076]": (Rfc6076Section, "[quality.rfc6076]\n{line}\n"),
}


#: What a [[quality.class]] must hold, so that the key under test is the only thing wrong.
REQUIRED = {"name": 'name = "x"', "categories": "categories = []", "ner": "ner = true"}


def _file(template: str, line: str, key: str) -> str:
    return template.format(line=line, required="".join(f"{v}\n" for k, v in REQUIRED.items() if k != key))


def _typo(key: str, known: list[str]) -> str:
    """A slip of the hand: two neighbouring letters swapped, else the last one doubled (never another known key)."""
    swapped = key[:1] + key[2] + key[1] + key[3:] if len(key) > 3 else key
    return next(k for k in (swapped, key + key[-1], key + "s") if k != key and k not in known)


def _table_keys(cls: type) -> list[str]:
    return [k for k in section_keys(cls) if not is_dataclass(_hint(cls, k)) and k not in ("class", "alerts")]


def _hint(cls: type, key: str):
    import typing

    from pbx_codes.config import _is_optional, toml_key

    hints = typing.get_type_hints(cls)
    name = next(f.name for f in fields(cls) if toml_key(f) == key)
    return _is_optional(hints[name])[1]


@pytest.mark.parametrize("section", list(SECTIONS))
def test_a_typo_in_any_section_is_refused_naming_the_file_section_and_key(tmp_path: Path, section: str) -> None:
    cls, template = SECTIONS[section]
    for key in _table_keys(cls):
        wrong = _typo(key, section_keys(cls))
        path = tmp_path / "pbx-codes.toml"
        path.write_text(_file(template, f"{wrong} = 1", key), encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        message = str(caught.value)
        assert message.startswith(f"{path}: {section} unknown key {wrong!r}"), message
        assert f"did you mean {key!r}" in message, message


@pytest.mark.parametrize("section", list(SECTIONS))
def test_a_value_of_the_wrong_type_is_refused_naming_the_file_section_and_key(tmp_path: Path, section: str) -> None:
    cls, template = SECTIONS[section]
    for key in _table_keys(cls):
        bad = '"text"' if _hint(cls, key) is not str else "7"
        path = tmp_path / "pbx-codes.toml"
        path.write_text(_file(template, f"{key} = {bad}", key), encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        assert str(caught.value).startswith(f"{path}: {section} {key} must be "), caught.value


@pytest.mark.parametrize("text, key, now", [
    ('[freeswitch]\npassword_env = "X"', "password_env", "[freeswitch.esl] secret_env"),
    ("[freeswitch]\nhook_port = 8090", "hook_port", "[freeswitch.hook] port"),
    ("[freeswitch]\nesl = false", "esl = false", "[freeswitch.esl] enabled = false"),
    ('[freeswitch]\nhook_lang = "ru"', "hook_lang", "language"),
    ("[asterisk.ami]\nrefused_backoff = 5", "refused_backoff", "auth_failure_backoff"),
    ("[asterisk.ami]\nbackoff_initial = 1", "backoff_initial", "reconnect_min"),
])
def test_an_older_name_is_read_as_its_current_key_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                                 text: str, key: str, now: str) -> None:
    path = tmp_path / "pbx-codes.toml"
    path.write_text(text + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="pbx_codes.config"):
        config = load_config(path)
    assert len(config.warnings) == 1 and f"{key} is now {now}" in config.warnings[0]
    assert config.warnings[0] in caplog.text
    current = {"password_env": config.freeswitch and config.freeswitch.esl.secret_env == "X",
               "hook_port": config.freeswitch and config.freeswitch.hook.port == 8090,
               "esl = false": config.freeswitch and not config.freeswitch.esl.enabled,
               "hook_lang": config.freeswitch and config.freeswitch.language == "ru",
               "refused_backoff": config.asterisk and config.asterisk.ami.auth_failure_backoff == 5.0,
               "backoff_initial": config.asterisk and config.asterisk.ami.reconnect_min == 1.0}
    assert current[key]


def test_an_older_name_beside_its_current_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pbx-codes.toml"
    path.write_text("[freeswitch]\nhook_port = 1\n[freeswitch.hook]\nport = 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"hook_port and hook.port are the same key"):
        load_config(path)


def test_a_typo_of_an_older_name_points_to_the_current_key(tmp_path: Path) -> None:
    path = tmp_path / "pbx-codes.toml"
    path.write_text("[freeswitch]\nhook_prot = 8089\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[freeswitch\] unknown key 'hook_prot' \(did you mean "
                                          r"'\[freeswitch.hook\] port'"):
        load_config(path)


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_config_that_is_not_a_regular_file_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "pbx-codes.toml"
    if kind == "fifo":
        os.mkfifo(path)  # nobody writes: reading it would block forever
    else:
        path.mkdir()
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            load_config(path)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(timeout=30)  # a deadline, not a pause: it returns as soon as load_config does
    if reader.is_alive():  # unblock the reader before failing
        with open(path, "wb"):
            pass
        pytest.fail("load_config blocked on a FIFO")
    assert isinstance(outcome[0], ConfigError) and str(outcome[0]) == f"{path}: is not a regular file"


# ---- the shipped example lists every key, and only known ones ----------------------------------------------------

def _uncommented(text: str) -> str:
    """The example with its commented keys and tables switched on: what the documentation says exists."""
    out = []
    for line in text.splitlines():
        m = re.match(r"#\s?(\[\[?[a-z0-9_.]+\]\]?.*|[a-z0-9_]+\s*=.*)$", line)
        out.append(m.group(1) if m else line)
    return "\n".join(out) + "\n"


def _documented(cls: type, tables: list[dict], where: str) -> list[tuple[str, str, str]]:
    """(section, key, problem) for every key of `cls` the tables lack and every key they have that `cls` lacks."""
    problems = []
    keys = set().union(*(t.keys() for t in tables)) if tables else set()
    known = set(section_keys(cls))
    problems += [(where, k, "not documented") for k in sorted(known - keys)]
    problems += [(where, k, "not a key") for k in sorted(keys - known)]
    for f in fields(cls):
        sub = _hint(cls, f.metadata.get("toml") or f.name) if f.metadata and "doc" in f.metadata else None
        key = (f.metadata.get("toml") if f.metadata else None) or f.name
        if sub is None:
            continue
        if is_dataclass(sub):
            problems += _documented(sub, [t[key] for t in tables if key in t], f"{where}.{key}")
        elif getattr(sub, "__origin__", None) is tuple and is_dataclass(sub.__args__[0]):
            problems += _documented(sub.__args__[0], [i for t in tables for i in t.get(key, [])], f"{where}.{key}")
    return problems


def test_the_example_documents_every_key_and_only_known_keys() -> None:
    raw = tomllib.loads(_uncommented(EXAMPLE.read_text(encoding="utf-8")))
    assert raw.pop("bindings")  # trunk names: the operator's own keys
    problems = [p for p in _documented(Config, [raw], "top level") if p[1] != "bindings"]
    assert problems == []


def test_the_example_with_every_documented_key_switched_on_is_a_valid_configuration() -> None:
    """Every commented default in the example is of the right type and uses the current names (no warning)."""
    config = parse_config(tomllib.loads(_uncommented(EXAMPLE.read_text(encoding="utf-8"))), str(EXAMPLE))
    assert config.warnings == ()
    assert config.quality is not None and config.quality.classes[0].name == "caller_abandon"


# ---- pbx-codes config check ---------------------------------------------------------------------------------------

def test_config_check_prints_the_effective_configuration_without_any_secret(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture) -> None:
    from pbx_codes.cli.main import main

    monkeypatch.setenv("PBX_CODES_AMI_SECRET", "ami-Secret-42")
    monkeypatch.setenv("PBX_CODES_ESL_PASSWORD", "esl-Secret-42")
    monkeypatch.setenv("PBX_CODES_CONSOLE_TOKEN", "console-Secret-42")
    path = tmp_path / "pbx-codes.toml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8").replace(
        'url = "sqlite:///var/lib/pbx-codes/annotations.db"', 'url = "postgresql://pbx:db-Secret-42@db.invalid/pbx"')
        + '\n[[alerts]]\ncategory = "billing"\ncount_at_least = 1\n'
          'webhook = "https://hooks.invalid/services/T0/B0/hook-Secret-42?token=q-Secret-42"\n', encoding="utf-8")
    assert main(["config", "check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "Secret-42" not in out + err
    shown = tomllib.loads(out)  # the output is itself a configuration
    assert shown["store"]["url"] == "postgresql://pbx:***@db.invalid/pbx"
    assert shown["alerts"][-1]["webhook"] == "https://hooks.invalid/***"
    assert shown["asterisk"]["ami"]["secret_env"] == "PBX_CODES_AMI_SECRET"
    assert shown["freeswitch"]["esl"]["reconnect_max"] == 30.0  # defaults are filled in
    assert shown["asterisk"]["language"] == "uk"
    again = parse_config(shown, str(path))
    assert again.freeswitch == load_config(path).freeswitch and again.asterisk == load_config(path).asterisk


def test_config_check_names_the_typo_in_one_line_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from pbx_codes.cli.main import main

    path = tmp_path / "pbx-codes.toml"
    path.write_text('[asterisk.ami]\nhots = "10.0.0.1"\n', encoding="utf-8")
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"pbx-codes: {path}: [asterisk.ami] unknown key 'hots' (did you mean 'host'?)")
    assert len(err.splitlines()) == 1


def test_config_check_refuses_what_serve_would_refuse_beyond_keys_and_types(tmp_path: Path) -> None:
    from pbx_codes.cli.main import main

    path = tmp_path / "pbx-codes.toml"
    path.write_text('[[alerts]]\ncategory = "capacity"\nabove = 1.5\n', encoding="utf-8")
    assert main(["config", "check", str(path)]) == 2


@pytest.mark.parametrize("line, message", [
    ("[asterisk.agi]\nmax_sessions = 0", "[asterisk.agi] max_sessions must be at least 1, got 0"),
    ("[asterisk.ami]\nport = 70000", "[asterisk.ami] port must be 1..65535, got 70000"),
    ('[freeswitch.esl]\nevent_format = "xml"', "[freeswitch.esl] event_format must be one of ['json', 'plain']"),
    ("[console]\nhistory = 0", "[console] history must be 1..100000, got 0"),
])
def test_a_value_out_of_its_range_is_refused_naming_the_section_and_key(tmp_path: Path, line: str,
                                                                        message: str) -> None:
    path = tmp_path / "pbx-codes.toml"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: {message}")
