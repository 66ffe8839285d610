"""What a FreeSWITCH hangup hook sees, rebuilt from the recorded captures, and a runner for the real Lua hook.

The channel variables come from each leg's recorded CHANNEL_HANGUP_COMPLETE event: FreeSWITCH creates that event in
``switch_core_session_hangup_state`` right after ``api_hangup_hook`` returns (after ``hangup_cause`` and
``hangup_cause_q850`` were set), so its variables are the channel as the hook found it. Caller-profile fields
(``destination_number``, ``caller_id_number``) are answered by ``getVariable`` and ``${...}`` through the caller
profile, so they are added from the event's ``Caller-*`` headers. Variables the recording lab itself wrote from
outside (``aleg_note`` ...) are dropped.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes

from support.paths import FIXTURES as FIXTURES_ROOT

REPO = Path(__file__).resolve().parents[2]
FIXTURES = FIXTURES_ROOT / "freeswitch"
HOOK_SCRIPT = REPO / "freeswitch" / "scripts" / "pbx_codes_hook.lua"
HARNESS = Path(__file__).resolve().parent / "lua" / "harness.lua"
CDR_CSV_CONF = REPO / "freeswitch" / "autoload_configs" / "cdr_csv.conf.xml"

LAB_NOTES = frozenset({"aleg_note", "hook_note", "pre_hangup_note", "sip_reason_text", "sip_reason_text_hc"})
PROFILE_FIELDS = {
    "Caller-Caller-ID-Number": "caller_id_number", "Caller-Caller-ID-Name": "caller_id_name",
    "Caller-Destination-Number": "destination_number", "Caller-ANI": "ani", "Caller-Context": "context",
    "Caller-Network-Addr": "network_addr", "Caller-Username": "username", "Caller-Channel-Name": "chan_name",
}
# A carrier phrase built to break everything it passes through: CSV quotes and commas, a backslash, CR/LF, a
# literal %0A, variable expansion, form separators, non-ASCII, and about 2 KB in all.
HOSTILE_PHRASE = ('Not "enough", money\\ \r\nX-Injected: 1\n%0Aapi shutdown ${system(id)} a&pbx_codes_catalog=mango'
                  '&b=c+d Недостатньо коштів ✓ ' + "Ї" * 960)


def json_events(path: Path) -> Iterator[dict[str, str]]:
    """The text/event-json frames of a recorded ESL connection (headers + Content-Length bodies)."""
    data = path.read_bytes()
    pos = 0
    while pos < len(data):
        end = data.find(b"\n\n", pos)
        if end < 0:
            return
        headers = dict(line.split(": ", 1) for line in data[pos:end].decode().split("\n") if ": " in line)
        pos = end + 2
        length = int(headers.get("Content-Length", "0"))
        body = data[pos:pos + length]
        pos += length
        if headers.get("Content-Type") == "text/event-json":
            yield json.loads(body)


def hangup_channels(scenario: str, variant: str = "bridge") -> dict[str, dict[str, str]]:
    """Role letter (A, B, X) -> the channel variables that leg's hangup hook would see."""
    summary = json.loads((FIXTURES / f"{scenario}.{variant}.summary.json").read_text())
    roles = {uuid: info["role"][:1] for uuid, info in summary["channels"].items()}
    out: dict[str, dict[str, str]] = {}
    for event in json_events(FIXTURES / f"{scenario}.{variant}.json.esl.txt"):
        if event.get("Event-Name") != "CHANNEL_HANGUP_COMPLETE":
            continue
        variables = {k[9:]: v for k, v in event.items()
                     if k.startswith("variable_") and isinstance(v, str) and k[9:] not in LAB_NOTES}
        for header, name in PROFILE_FIELDS.items():
            if isinstance(event.get(header), str) and name not in variables:
                variables[name] = event[header]
        out[roles[event["Unique-ID"]]] = variables
    return out


def carrier_legs(scenario: str) -> tuple[dict[str, str], dict[str, str]]:
    """(A, B) of a bridged call, with A tagged as the shipped dialplan route tags it (pbx_codes_trunk=<gateway>)."""
    legs = hangup_channels(scenario)
    a_leg, b_leg = dict(legs["A"]), dict(legs["B"])
    a_leg["pbx_codes_trunk"] = b_leg["sip_gateway_name"]
    return a_leg, b_leg


def with_phrase(variables: Mapping[str, str], phrase: str) -> dict[str, str]:
    """The leg as if the carrier had sent `phrase`: B's failure phrase and A's copies of it."""
    out = dict(variables)
    for name in ("sip_invite_failure_phrase", "sip_hangup_phrase"):
        if name in out:
            out[name] = phrase
    return out


def lua_interpreters() -> list[str]:
    """The Lua interpreters that have luasocket: mod_lua embeds LuaJIT (the 5.1 language), 5.1, 5.2, 5.3 (what
    FreeSWITCH's configure picks after LuaJIT, and what the live FreeSWITCH ran) or 5.4."""
    found = []
    for name in ("lua5.1", "lua5.2", "lua5.3", "lua5.4"):
        path = shutil.which(name)
        if path and subprocess.run([path, "-e", 'require "socket"'], capture_output=True).returncode == 0:
            found.append(path)
    return found


@dataclass(slots=True)
class HookRun:
    """What the hook script did to the channel."""
    sets: list[tuple[str, str]] = field(default_factory=list)
    logs: list[tuple[str, str]] = field(default_factory=list)
    api: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    done: bool = False

    @property
    def variables(self) -> dict[str, str]:
        return dict(self.sets)


def parse_harness_output(raw: bytes) -> HookRun:
    run = HookRun()
    for line in raw.decode("ascii").splitlines():
        kind, *fields = line.split("\t")
        text = [unquote_to_bytes(f).decode("utf-8") for f in fields]  # strict: invalid UTF-8 fails the test
        if kind == "set":
            run.sets.append((text[0], text[1]))
        elif kind == "log":
            run.logs.append((text[0], text[1]))
        elif kind == "api":
            run.api.append((text[0], text[1]))
        elif kind == "error":
            run.errors.append(text[0])
        elif kind == "done":
            run.done = True
    return run


async def run_hook(lua: str, variables: Mapping[str, str], port: int, workdir: Path, *, mode: str = "socket",
                   host: str = "127.0.0.1", guard: float = 20.0) -> HookRun:
    """Run the shipped hook script on a channel with `variables`, as ``lua pbx_codes_hook.lua HOST PORT``.
    `guard` only stops a hung interpreter; it is not a measurement."""
    vars_file = workdir / "channel.vars"
    vars_file.write_text("".join(f"{name}={quote(value, safe='')}\n" for name, value in variables.items()))
    proc = await asyncio.create_subprocess_exec(lua, str(HARNESS), mode, str(vars_file), str(HOOK_SCRIPT), host,
                                                str(port), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), guard)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"the hook script did not return within {guard} s") from None
    assert proc.returncode == 0, err.decode(errors="replace")
    return parse_harness_output(out)


def csv_template(path: Path = CDR_CSV_CONF) -> str:
    """The default template of a cdr_csv.conf.xml, as FreeSWITCH's XML parser hands it to mod_cdr_csv."""
    root = ET.parse(path).getroot()
    default = next(p.get("value") for p in root.iter("param") if p.get("name") == "default-template")
    return next(t.text or "" for t in root.iter("template") if t.get("name") == default)


def expand(template: str, variables: Mapping[str, str]) -> str:
    """``${name}`` -> the value, unset -> "", no escaping: what switch_channel_expand_variables does for
    mod_cdr_csv's plain variable references (values are not expanded again)."""
    out: list[str] = []
    pos = 0
    while True:
        start = template.find("${", pos)
        if start < 0:
            out.append(template[pos:])
            return "".join(out)
        end = template.index("}", start)
        out.append(template[pos:start])
        out.append(variables.get(template[start + 2:end], ""))
        pos = end + 1
