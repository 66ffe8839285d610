"""The agent's instance name through the commands: the configuration's default, `replay --config` (JSON and the
store), `report --by instance` / `--instance` over a shared store, and `tail`'s line."""
from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from pbx_codes.cli.console_commands import format_hangup
from pbx_codes.cli.main import main
from pbx_codes.config import ConfigError, parse_config
from pbx_codes.sinks.bus import AnnotationBus
from pbx_codes.store import open_store
from support.paths import FIXTURES
from support.seizures import mix


def test_instance_defaults_to_the_host_name_and_a_bad_one_is_refused() -> None:
    assert parse_config({}).instance == socket.gethostname()
    assert parse_config({"instance": " pbx-kyiv-1 "}).instance == "pbx-kyiv-1"
    for bad in ("", "a\nb", 7, "x" * 65):
        with pytest.raises(ConfigError, match="instance"):
            parse_config({"instance": bad})


def test_replay_with_a_config_names_its_instance_in_json_and_in_the_store(tmp_path: Path, capsys) -> None:
    config = tmp_path / "pbx-codes.toml"
    config.write_text('instance = "pbx-odesa"\n')
    db = tmp_path / "a.db"
    assert main(["replay", "--pbx", "asterisk", str(FIXTURES / "asterisk" / "limit503.ami.txt"), "--json",
                 "--config", str(config), "--store", f"sqlite://{db}"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [r["instance"] for r in rows] == ["pbx-odesa"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT instance FROM hangups").fetchall() == [("pbx-odesa",)]


def test_report_per_instance_over_a_shared_store(tmp_path: Path, capsys) -> None:
    url = f"sqlite://{tmp_path / 'fleet.db'}"

    async def write() -> None:
        store = await open_store(url, {"retention_days": None, "journal": ""})
        store.start()
        for name, trunk in (("pbx-a", "lifecell"), ("pbx-b", "lifecell")):
            for ann in mix(trunk, start=1_000_000.0):
                ann = replace(ann, observation=replace(ann.observation, instance=name,
                                                       leg_id=f"{name}-{ann.observation.leg_id}"))
                store.add(ann)
        await store.flush(timeout=20)
        await store.close()

    asyncio.run(write())
    window = ["--store", url, "--from", "999000", "--to", "1002000"]
    assert main(["report", *window, "--by", "instance", "--json"]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["instance"], r["trunk"], r["seizures"]) for r in results] == [("pbx-a", "lifecell", 10),
                                                                           ("pbx-b", "lifecell", 10)]
    assert main(["report", *window, "--instance", "pbx-b", "--json"]) == 0
    assert [json.loads(line)["seizures"] for line in capsys.readouterr().out.splitlines()] == [10]
    assert main(["report", *window, "--by", "instance"]) == 0
    text = capsys.readouterr().out
    assert "instance" in text and "pbx-a" in text and "pbx-b" in text


def test_tail_line_names_the_instance_when_the_event_has_one() -> None:
    event = {"time": 0, "instance": "pbx-lviv", "pbx": "asterisk", "trunk": "gw", "number": "**12", "code": "486",
             "category": "busy", "texts": {"en": "Busy"}}
    assert format_hangup(event).split()[1:3] == ["pbx-lviv", "asterisk"]
    assert format_hangup({k: v for k, v in event.items() if k != "instance"}).split()[1] == "asterisk"


def test_bus_of_a_named_agent_stamps_annotations_that_name_none() -> None:
    from support.seizures import mix as legs

    async def run() -> list:
        bus = AnnotationBus(instance="pbx-x")
        sub = bus.subscribe("t")
        first, second = legs("t")[:2]
        bus.publish(first)
        bus.publish(replace(second, observation=replace(second.observation, instance="other")))
        return [sub.queue.get_nowait().observation.instance for _ in range(2)]

    assert asyncio.run(run()) == ["pbx-x", "other"]
