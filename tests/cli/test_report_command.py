"""`pbx-codes report` over real FreeSWITCH CDR rows, an Asterisk Master.csv, a json_cdr file and the store."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from pbx_codes.cli.main import main
from pbx_codes.store import open_store
from support.paths import FIXTURES, captures
from support.seizures import MIX_EXPECTED, mix


def fs_cdr_csv(path: Path) -> Path:
    """The mod_cdr_csv lines FreeSWITCH really wrote for every live2 call (the summaries keep them byte for byte)."""
    lines = [row["_raw"] for summary in captures(FIXTURES / "freeswitch" / "live2", "*.summary.json")
             for row in (json.loads(summary.read_text()).get("cdr_csv") or {}).values()]
    path.write_text("\n".join(lines) + "\n")
    return path


def report_json(capsys, *argv: str) -> dict[str, dict]:
    assert main(["report", *argv, "--json"]) == 0
    return {o["trunk"]: o for o in map(json.loads, capsys.readouterr().out.splitlines())}


def test_freeswitch_cdr_csv_report_counts_each_gateway_leg_once(tmp_path, capsys):
    r = report_json(capsys, "--cdr", str(fs_cdr_csv(tmp_path / "Master.csv")), "--preset", "freeswitch-cdr-csv")
    life = r["lifecell"]
    # lifecell legs in live2: 2 answered (1 s each), 2 caller cancels, 5 x 503 (failover x3, after 183 x2)
    assert (life["seizures"], life["answered"]) == (9, 2)
    assert life["asr"] == pytest.approx(2 / 9) and life["ner"] == pytest.approx(4 / 9)
    assert life["isa"] == pytest.approx(5 / 9) and life["seer"] == pytest.approx(2 / 9)
    assert life["acd_s"] == 1.0
    # The template has no progress column: only the answers time a PDD, at the stamps' 1 s resolution.
    assert (life["timed"]["pdd"], life["pdd_p50_ms"]) == (2, 0.0)
    assert (r["lab_gw2"]["seizures"], r["lab_gw2"]["ner"]) == (2, 1.0)
    assert (r["lab_blackhole"]["isa"], r["lab_blackhole"]["srd_p95_ms"]) == (1.0, 32000.0)


MASTER_CSV = [  # accountcode,src,dst,dcontext,clid,channel,dstchannel,lastapp,lastdata,start,answer,end,duration,
    # billsec,disposition,amaflags,uniqueid,userfield
    '"","100","200","out","","PJSIP/caller-00000001","PJSIP/lifecell-00000001","Dial","x","2026-12-01 10:00:00",'
    '"2026-12-01 10:00:04","2026-12-01 10:00:34",34,30,"ANSWERED","DOCUMENTATION","1.1",""',
    '"","100","200","out","","PJSIP/caller-00000002","PJSIP/lifecell-00000002","Dial","x","2026-12-01 10:01:00",'
    '"","2026-12-01 10:01:05",5,0,"BUSY","DOCUMENTATION","1.2",""',
    '"","100","200","out","","PJSIP/caller-00000003","PJSIP/lifecell-00000003","Dial","x","2026-12-01 10:02:00",'
    '"","2026-12-01 10:02:01",1,0,"CONGESTION","DOCUMENTATION","1.3",""',
    '"","100","200","out","","PJSIP/caller-00000004","","Playback","x","2026-12-01 10:03:00",'
    '"2026-12-01 10:03:00","2026-12-01 10:03:10",10,10,"ANSWERED","DOCUMENTATION","1.4",""',
    'this line is not a CDR',
]


def test_asterisk_master_csv_report_reads_disposition_and_billsec(tmp_path, capsys):
    path = tmp_path / "Master.csv"
    path.write_text("\n".join(MASTER_CSV) + "\n")
    assert main(["report", "--cdr", str(path), "--preset", "asterisk-master-csv", "--json"]) == 0
    out, err = capsys.readouterr()
    r = {o["trunk"]: o for o in map(json.loads, out.splitlines())}
    assert "1 malformed row(s) skipped" in err
    assert list(r) == ["lifecell"]  # the row without a dialed channel is no seizure
    life = r["lifecell"]
    assert (life["seizures"], life["answered"], life["acd_s"]) == (3, 1, 30.0)
    assert life["ner"] == pytest.approx(2 / 3) and life["classes"] == {"answered": 1, "capacity": 1, "user_busy": 1}


def test_freeswitch_json_cdr_report_reads_the_callflow_times(tmp_path, capsys):
    """mod_json_cdr documents built from what the answered capture's json_cdr held (variables and callflow times)."""
    summary = json.loads((FIXTURES / "freeswitch" / "live2" / "answered_carrier_bye.bridge.summary.json").read_text())
    lines = []
    for doc in summary["cdr_json"].values():
        variables = {k: v for k, v in doc.items() if k not in ("file", "callflow_times") and v is not None}
        lines.append(json.dumps({"variables": variables, "callflow": [{"times": doc["callflow_times"]}]}))
    path = tmp_path / "cdr.jsonl"
    path.write_text("\n".join(lines) + "\n")
    life = report_json(capsys, "--cdr", str(path), "--preset", "freeswitch-json")["lifecell"]
    assert (life["seizures"], life["answered"]) == (1, 1)  # the inbound A-leg is not a seizure
    assert life["acd_s"] == pytest.approx((1796115964377181 - 1796115963357203) / 1e6)
    assert life["pdd_p50_ms"] == 0.0


def test_store_report_over_a_range_in_every_format(tmp_path, capsys):
    url = f"sqlite://{tmp_path}/a.db"

    async def fill() -> None:
        store = await open_store(url, {"journal": str(tmp_path / "j"), "retention_days": None})
        store.start()
        for ann in mix("lifecell", start=1_800_000_000.0):
            store.add(ann)
        await store.flush(10)
        await store.close()

    asyncio.run(fill())
    window = ["--store", url, "--from", "2027-01-15T08:00", "--to", "2027-01-15T09:00"]
    r = report_json(capsys, *window)
    assert {k: r["lifecell"][k] for k in MIX_EXPECTED} == pytest.approx(MIX_EXPECTED)
    assert main(["report", *window, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("asterisk,lifecell,10,4,0.4,0.7")
    out = tmp_path / "report.html"
    assert main(["report", *window, "--by", "hour", "--format", "html", "-o", str(out)]) == 0
    assert "<svg" in out.read_text() and "lifecell" in out.read_text()
    assert report_json(capsys, "--store", url, "--from", "2030-01-01") == {}


@pytest.mark.parametrize("argv,error", [
    (["--cdr", "x.csv"], "--cdr needs --preset"),
    (["--cdr", "missing.csv", "--preset", "asterisk-master-csv"], "missing.csv: no such file"),
    (["--cdr", "x.csv", "--preset", "nope"], "unknown preset 'nope'"),
    (["--store", "sqlite:///nonexistent/a.db"], "no such database file"),
    (["--store", "sqlite:///x.db", "--last", "yesterday"], "--last 'yesterday'"),
    (["--store", "sqlite:///x.db", "--from", "2026-13-45"], "cannot read the time"),
])
def test_bad_arguments_are_one_line_errors(tmp_path, monkeypatch, capsys, argv, error):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.csv").write_text("")
    assert main(["report", *argv]) == 2
    err = capsys.readouterr().err
    assert error in err and len(err.strip().splitlines()) == 1
