"""The [console] section: loopback by default, and no start off loopback without a token."""
from __future__ import annotations

import pytest

from pbx_codes.config import ConfigError
from pbx_codes.console.settings import is_loopback, parse_console_settings, parse_listen


def test_defaults_listen_on_loopback_8088_without_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PBX_CODES_CONSOLE_TOKEN", raising=False)
    s = parse_console_settings(None)
    assert (s.host, s.port, s.token, s.show_numbers) == ("127.0.0.1", 8088, None, False)


def test_off_loopback_without_token_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PBX_CODES_CONSOLE_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="needs an access token"):
        parse_console_settings({"listen": "0.0.0.0:8088"})


def test_token_comes_from_environment_or_file(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("PBX_CODES_CONSOLE_TOKEN", "from-env")
    assert parse_console_settings({"listen": "0.0.0.0:9000"}).token == "from-env"
    monkeypatch.delenv("PBX_CODES_CONSOLE_TOKEN")
    path = tmp_path / "token"
    path.write_text("from-file\n")
    assert parse_console_settings({"listen": "10.0.0.5", "token_file": str(path)}).token == "from-file"


def test_unreadable_token_file_is_an_error_even_on_loopback(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("PBX_CODES_CONSOLE_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="access token"):
        parse_console_settings({"token_file": str(tmp_path / "missing")})


def test_settings_repr_never_shows_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PBX_CODES_CONSOLE_TOKEN", "s3cret-value")
    assert "s3cret-value" not in repr(parse_console_settings({}))


def test_command_line_listen_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PBX_CODES_CONSOLE_TOKEN", raising=False)
    s = parse_console_settings({"listen": "127.0.0.1:1"}, listen="[::1]:9099")
    assert (s.host, s.port) == ("::1", 9099)


@pytest.mark.parametrize("section, message", [
    ({"colour": "red"}, "unknown key"), ({"listen": "127.0.0.1:99999"}, "port"),
    ({"language": "de"}, "language"), ({"show_numbers": "yes"}, "show_numbers"), ({"history": 0}, "history"),
])
def test_bad_sections_name_the_key(section: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_console_settings(section)


@pytest.mark.parametrize("host, loop", [("127.0.0.1", True), ("127.3.2.1", True), ("::1", True),
                                        ("localhost", True), ("0.0.0.0", False), ("::", False),
                                        ("192.168.1.2", False), ("console.example", False)])
def test_loopback_addresses(host: str, loop: bool) -> None:
    assert is_loopback(host) is loop


def test_listen_forms() -> None:
    assert parse_listen("10.1.2.3") == ("10.1.2.3", 8088)
    assert parse_listen("[::]:80") == ("::", 80)
    assert parse_listen("localhost:0") == ("localhost", 0)


@pytest.mark.parametrize("listen", ["127.0.0.1:²", "[::1]:٨٠"])
def test_a_port_of_non_ascii_digits_is_a_config_error_naming_the_port(listen: str) -> None:
    with pytest.raises(ConfigError, match=r"port must be 0..65535"):
        parse_listen(listen)
