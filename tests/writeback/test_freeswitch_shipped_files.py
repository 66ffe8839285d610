"""The files in freeswitch/ work as the guide says when copied as they are."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from pbx_codes.observers.freeswitch import HOOK_VARIABLES
from writeback.fs_hook_support import HOOK_SCRIPT, REPO, lua_interpreters

FS = REPO / "freeswitch"


def params(path) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in ET.parse(path).getroot().iter("param")}


def test_the_dialplan_file_a_user_copies_routes_nothing_and_lets_the_routing_extensions_run() -> None:
    root = ET.parse(FS / "dialplan" / "pbx_codes.xml").getroot()
    extensions = list(root.iter("extension"))
    assert [e.get("name") for e in extensions] == ["pbx_codes_hangup_hook"]
    assert all(e.get("continue") == "true" for e in extensions)
    actions = [a.get("application") for a in root.iter("action")]
    assert "bridge" not in actions and "transfer" not in actions
    exported = [a.get("data") for a in root.iter("action") if a.get("application") == "export"]
    assert exported == ["session_in_hangup_hook=true", "api_hangup_hook=lua pbx_codes_hook.lua 127.0.0.1 8089"]


def test_the_gateway_snippet_is_a_variables_block_to_merge_not_a_gateway_freeswitch_would_load() -> None:
    shipped = [p.relative_to(FS) for p in FS.rglob("*.xml")]
    assert not [p for p in shipped if p.parts[0] == "sip_profiles"], "FreeSWITCH would load it as a gateway"
    root = ET.parse(FS / "snippets" / "gateway_variables.xml").getroot()
    assert root.tag == "variables"
    assert {v.get("name") for v in root} == {"pbx_codes_catalog", "pbx_codes_trunk"}
    assert {v.get("direction") for v in root} == {"outbound"}


def test_cdr_csv_rows_land_in_log_dir_cdr_csv_not_in_a_doubled_folder() -> None:
    # mod_cdr_csv always appends "cdr-csv" to log-base
    log_base = params(FS / "autoload_configs" / "cdr_csv.conf.xml").get("log-base")
    assert log_base is None or not log_base.rstrip("/").endswith("cdr-csv")


def test_json_cdr_is_shipped_with_plain_values() -> None:
    settings = params(FS / "autoload_configs" / "json_cdr.conf.xml")
    assert settings["encode-values"] == "false" and settings["log-b-leg"] == "true"


def test_the_hook_script_sends_exactly_the_variables_the_endpoint_reads() -> None:
    block = re.search(r"local VARS = \{(.*?)\n\}", HOOK_SCRIPT.read_text(), re.S).group(1)
    assert tuple(re.findall(r'"([^"]+)"', block)) == HOOK_VARIABLES


def test_the_script_header_and_the_guide_name_the_lua_versions_the_tests_run() -> None:
    header = HOOK_SCRIPT.read_text().split("\n\n", 1)[0]
    guide = (FS / "README.md").read_text()
    assert "5.1, 5.2, 5.3 and 5.4" in header and "5.1, 5.2, 5.3 and 5.4" in guide
    tested = {p.rsplit("lua", 1)[1] for p in lua_interpreters()}
    assert tested <= {"5.1", "5.2", "5.3", "5.4"}
    assert 'uuid_getvar <uuid> api_hangup_hook"' in guide.split("## Check", 1)[1]  # eval has no channel
