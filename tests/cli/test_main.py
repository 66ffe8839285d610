"""The command line's promise: every failure a user can cause is one line on stderr and exit 2, never a traceback;
and every log line is one line, whatever a carrier or a gateway name put in it."""
from __future__ import annotations

import contextlib
import io
import logging
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbx_codes.cli import main as cli_main
from pbx_codes.cli.main import configure_logging, main
from support.paths import FIXTURES


def run(argv: list[str]) -> tuple[int, str, str]:
    """main() in this process, as a user would see it: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else 2
    finally:
        root = logging.getLogger()
        for handler in [h for h in root.handlers if getattr(h, "_pbx_codes", False)]:
            root.removeHandler(handler)
    return code, out.getvalue(), err.getvalue()


def assert_one_clean_line(code: int, err: str) -> None:
    assert "Traceback" not in err, err
    if code == 2:
        lines = err.strip().splitlines()
        assert lines and lines[-1].startswith("pbx-codes"), err
        assert len(lines) == 1, err


# ---- malformed captures (the reported defect) ---------------------------------------------------------------

@pytest.mark.parametrize("pbx", ["asterisk", "freeswitch"])
@pytest.mark.parametrize("content", [b"x" * 300_000, b"Asterisk Call Manager/1.0\r\n" + b"A" * 300_000,
                                     b"Content-Length: 99999999999\n\n", b"\xff\xfe" * 70_000])
def test_replay_of_a_malformed_capture_is_one_line_naming_the_file(tmp_path: Path, pbx: str, content: bytes) -> None:
    capture = tmp_path / "broken.txt"
    capture.write_bytes(content)
    code, _, err = run(["replay", "--pbx", pbx, str(capture)])
    assert code in (0, 2)
    assert_one_clean_line(code, err)
    if code == 2:
        assert str(capture) in err


def test_a_command_module_that_cannot_be_loaded_is_reported_not_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", (*cli_main.COMMAND_MODULES, "pbx_codes.cli.no_such_command"))
    code, _, err = run(["catalogs"])
    assert code == 2 and "pbx_codes.cli.no_such_command" in err
    assert_one_clean_line(code, err)


def test_an_unexpected_error_is_one_line_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from pbx_codes.cli import catalog_commands

    def boom(args):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(catalog_commands, "cmd_catalogs", boom)
    code, _, err = run(["catalogs"])
    assert code == 2 and "RecursionError" in err
    assert_one_clean_line(code, err)


def test_an_error_message_carrying_control_characters_stays_one_line(tmp_path: Path) -> None:
    name = tmp_path / "a\nb\x1b[31m.toml"
    name.write_text("id = [", encoding="utf-8")
    code, _, err = run(["validate", str(name)])
    assert code == 2 and "\x1b" not in err
    assert_one_clean_line(code, err)


@pytest.mark.parametrize("command", ["replay", "backfill"])
def test_a_store_password_quoted_by_any_command_is_redacted(tmp_path: Path, command: str) -> None:
    capture = FIXTURES / "asterisk" / "money409.ami.txt"
    url = "postgresql://pbx:s3cr#t@[::1/cdr"
    code, _, err = run([command, "--pbx", "asterisk", str(capture), "--store", url])
    assert code == 2 and "s3cr" not in err
    assert_one_clean_line(code, err)


# ---- fuzzing the whole command line with bad files and arguments ------------------------------------------

@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("bad")
    files = {
        "missing": d / "missing.txt",
        "empty": d / "empty.csv",
        "dir": d / "folder.toml",
        "garbage": d / "garbage.bin",
        "long_line": d / "long.txt",
        "deep_toml": d / "deep.toml",
        "huge_int": d / "huge.toml",
        "not_utf8": d / "latin.toml",
        "bad_csv": d / "bad.csv",
        "fake_db": d / "fake.db",
        "json": d / "cdr.json",
    }
    files["empty"].write_bytes(b"")
    files["dir"].mkdir()
    files["garbage"].write_bytes(os.urandom(4096))
    files["long_line"].write_bytes(b"Event: Hangup\r\nCause-txt: " + b"A" * 200_000)
    files["deep_toml"].write_text("x = " + "[" * 50_000 + "]" * 50_000 + "\n")
    files["huge_int"].write_text("id = " + "7" * 5000 + "\n")
    files["not_utf8"].write_bytes(b'id = "\xff\xfe"\n')
    files["bad_csv"].write_text('"uniqueid","disposition","pbx_rawcause"\n"1","BUSY","SIP 486 Busy\n'
                                '"2","A","B","C"\n=x\n')
    files["fake_db"].write_bytes(b"SQLite format 2\x00" + os.urandom(2000))
    files["json"].write_text('{"variables": [1, 2, {"a": ')
    paths = {k: str(v) for k, v in files.items()}
    paths["ami"] = str(FIXTURES / "asterisk" / "limit503.ami.txt")
    paths["esl"] = str(FIXTURES / "freeswitch" / "409_not_enough_money.direct.json.esl.txt")
    paths["out"] = str(d / "out.csv")
    paths["catalog_dir"] = str(d)
    paths["store"] = f"sqlite:///{d}/store.db"
    return paths


WORDS = st.sampled_from(["503", "2219", "200/486", "030", "", "-", "--", "nope", "sip", "lifecell", "9" * 5000,
                         "x\r\ny", "\x1b[2J", "\u202e", "main.cdr", "a,b,a", "sip_code=", "=", "%zz"])


@st.composite
def command_lines(draw, files: dict[str, str]) -> list[str]:
    path = st.sampled_from(sorted(v for k, v in files.items() if k not in ("store", "catalog_dir")))
    token = WORDS | path | st.text(max_size=12)
    command = draw(st.sampled_from(["lookup", "catalogs", "export", "validate", "replay", "enrich", "backfill"]))
    argv = [command]
    if command == "lookup":
        argv += [draw(token)] + draw(st.lists(st.sampled_from(["--json", "--catalog", "--method", "--lang"]) | token,
                                              max_size=4))
    elif command == "export":
        argv += [draw(token), "--format", draw(st.sampled_from(["json", "csv", "xml"]))]
    elif command == "validate":
        argv += [draw(path)]
    elif command == "replay":
        argv += [draw(path), "--pbx", draw(st.sampled_from(["asterisk", "freeswitch", "x"]))]
        argv += draw(st.lists(st.sampled_from(["--json", "--catalog", "lifecell", "--lang", "uk"]), max_size=3))
    elif command == "enrich":
        argv += [draw(path), "--preset", draw(st.sampled_from(
            ["asterisk-csv-header", "asterisk-master-csv", "freeswitch-cdr-csv", "asterisk-json", "freeswitch-json",
             "asterisk-sqlite3-custom", "nope"])), "-o", files["out"], "--no-progress"]
        argv += draw(st.lists(st.sampled_from(["--force", "--header", "--columns", "--map", "--table"]) | token,
                              max_size=3))
    elif command == "backfill":
        argv += [draw(path), "--pbx", draw(st.sampled_from(["asterisk", "freeswitch"])), "--store", files["store"]]
    if draw(st.booleans()):
        argv += [draw(st.sampled_from(["--config", "--catalog-dir"])),
                 draw(path | st.just(files["catalog_dir"]))]
    return argv


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(data=st.data())
def test_no_command_line_ever_shows_a_traceback(bad_files: dict[str, str], data: st.DataObject) -> None:
    argv = data.draw(command_lines(bad_files))
    code, _, err = run(argv)
    assert code in (0, 1, 2), (argv, code, err)
    assert_one_clean_line(code, err)


# ---- log lines ----------------------------------------------------------------------------------------------

FORGED = "gw-mango\r\n2026-12-01 10:00:00,000 WARNING pbx_codes.store: store lost every row\x1b[2K\x07\u202e"
RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) pbx_codes")


def test_a_freeswitch_gateway_name_or_phrase_cannot_forge_a_log_line(resolver) -> None:
    from pbx_codes.observers.freeswitch import observation_from_variables
    from pbx_codes.sinks.alerts import AlertEngine, parse_rules

    variables = {"uuid": "3f2c8a1e-0000-4000-8000-000000000001", "direction": "outbound",
                 "sip_gateway_name": FORGED, "sip_invite_failure_status": "402",
                 "sip_invite_failure_phrase": "Payment Required\n" + FORGED.split("\r\n", 1)[1],
                 "hangup_cause": "CALL_REJECTED", "channel_name": "sofia/gateway/x/380"}
    observation = observation_from_variables(variables)
    assert observation is not None and "\r\n" in (observation.trunk or "")   # the path carries it raw
    stream = io.StringIO()
    handler = configure_logging(0, stream)
    try:
        engine = AlertEngine(parse_rules([{"trunk": "*", "category": "billing", "count_at_least": 1,
                                           "window": 60, "hold": 0}]))
        engine.observe(resolver.resolve(observation), now=1.0)
        logging.getLogger("pbx_codes.freeswitch").warning("leg failed: %s", observation.phrase)
    finally:
        logging.getLogger().removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, lines                        # the alert and the phrase: one line each
    for line in lines:
        assert RECORD_START.match(line), line
        assert not any(ch in line for ch in "\r\x1b\x07\u202e")
    assert "WARNING pbx_codes.store: store lost every row" in lines[0]   # shown, but inside the first line


@pytest.mark.parametrize("kind", ["PbxCodesError", "ConfigError", "StoreError", "AuthenticationError",
                                  "PbxConnectionError", "CommandError", "ProtocolError", "InputError"])
def test_every_kind_of_pbx_codes_error_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    from pbx_codes import errors
    from pbx_codes.cli import catalog_commands

    def fail(args):
        raise getattr(errors, kind)("the store at db.example refused the batch")

    monkeypatch.setattr(catalog_commands, "cmd_catalogs", fail)
    code, _, err = run(["catalogs"])
    assert code == 2 and err.strip() == "pbx-codes: the store at db.example refused the batch"
