"""The Grafana dashboard's every query runs without error on a real Prometheus (Debian's server on loopback) that
scrapes a live pbx-codes /metrics endpoint and evaluates the shipped rules."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from integration.live_console import free_tcp_port
from pbx_codes.sinks.metrics import CONTENT_TYPE, Metrics
from support.paths import REPO
from support.seizures import mix
from support.waiting import block_until

DASHBOARD = REPO / "grafana" / "pbx-codes-trunk-quality.json"
RULES = REPO / "prometheus" / "pbx-codes.rules.yml"
#: What Grafana puts in place of its variables when every PBX and trunk is selected.
GRAFANA_VARIABLES = {"$pbx": ".*", "$trunk": ".*", "$__rate_interval": "1m", "$__range": "5m"}


def grafana_to_promql(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"a variable the test does not know: {expr}"
    return expr


def dashboard_queries() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    out = [(f"{p['title']} / {t['refId']}", t["expr"]) for p in dash["panels"] for t in p["targets"]]
    out += [(f"annotation {a['name']}", a["expr"]) for a in dash["annotations"]["list"]]
    return out


class _Feeder:
    """A pbx-codes /metrics endpoint whose counters keep growing: the mix of ten seizures every half second."""

    def __init__(self) -> None:
        self.metrics = Metrics()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        feeder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with feeder.lock:
                    body = feeder.metrics.render()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.threads = [threading.Thread(target=self.server.serve_forever, daemon=True),
                        threading.Thread(target=self._feed, daemon=True)]

    def _feed(self) -> None:
        while not self.stop.wait(0.5):
            with self.lock:
                for ann in mix("lifecell") + mix("kyivstar", pbx="freeswitch"):
                    self.metrics.observe(ann)

    def __enter__(self) -> _Feeder:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def api(port: int, path: str, **params: str) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:  # a bad query is a 400 with a JSON body naming the error
        body = exc.read()
        if exc.code == 503:  # still starting (replaying its storage): plain text, not an answer yet
            raise ConnectionError(f"prometheus not ready: {body[:200]!r}") from exc
        return json.loads(body)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is missing (Debian package prometheus; scripts/setup.sh installs it)")
    work = tmp_path_factory.mktemp("prometheus")
    with _Feeder() as feeder:
        config = work / "prometheus.yml"
        config.write_text(json.dumps({  # YAML is a superset of JSON
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "pbx-codes",
                                "static_configs": [{"targets": [f"127.0.0.1:{feeder.port}"]}]}],
        }))
        port = free_tcp_port()
        log = (work / "prometheus.log").open("wb")
        proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={work / 'data'}",
                                 f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
        try:
            def ready() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(f"prometheus exited: {(work / 'prometheus.log').read_text()[-2000:]}")
                try:
                    got = api(port, "query", query='count(pbx_trunk:asr:ratio_rate5m >= 0)')
                except OSError:
                    return False
                result = got.get("data", {}).get("result", [])
                return bool(result) and float(result[0]["value"][1]) == 2
            block_until(ready, limit=60, step=0.25, what="Prometheus evaluating the shipped rules")
            yield port
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


@pytest.mark.parametrize("title,expr", dashboard_queries(), ids=[q[0] for q in dashboard_queries()])
def test_every_dashboard_query_runs_without_error_on_prometheus(prometheus, title, expr):
    got = api(prometheus, "query", query=grafana_to_promql(expr))
    assert got["status"] == "success", f"{title}: {got.get('error')}"


def test_template_variables_list_the_fed_pbxs_and_trunks(prometheus):
    dash = json.loads(DASHBOARD.read_text())
    found = {}
    for var in dash["templating"]["list"]:
        if var["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((.*), (\w+)\)", var["query"]["query"])
        assert match, var["query"]["query"]
        selector, label = grafana_to_promql(match.group(1)), match.group(2)
        got = api(prometheus, f"label/{label}/values", **{"match[]": selector})
        assert got["status"] == "success", got
        found[label] = set(got["data"])
    assert found == {"pbx": {"asterisk", "freeswitch"}, "trunk": {"lifecell", "kyivstar"}}


def test_the_dashboards_ratios_show_the_fed_mix(prometheus):
    """Ten seizures per feed, 4 answered, 7 for NER, 5 for SEER, 2 ineffective: the ratios are exact at any rate."""
    for record, value in (("asr", 0.4), ("ner", 0.7), ("seer", 0.5), ("isa", 0.2)):
        got = api(prometheus, "query", query=f'pbx_trunk:{record}:ratio_rate5m{{trunk="lifecell"}}')
        values = [float(r["value"][1]) for r in got["data"]["result"]]
        assert values == [pytest.approx(value)], (record, got)


def test_a_broken_query_is_reported_as_an_error(prometheus):
    """The check can fail: Prometheus refuses a query the dashboard must never contain."""
    got = api(prometheus, "query", query="sum by (trunk (pbx_codes_trunk_seizures_total)")
    assert got["status"] == "error"
