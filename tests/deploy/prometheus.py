"""A real Prometheus for the tests, and the dashboards' queries to run on it.

promtool cannot parse a lone PromQL expression, so tests start Debian's
``prometheus`` on loopback, point it at some targets under the job and ``service``
labels the real scrape configuration uses, and run each dashboard panel's query
through the HTTP API with the dashboard variables filled in.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
GRAFANA_DIR = REPO_ROOT / "deploy" / "grafana"
DASHBOARD_FILES = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))
DATASOURCES_FILE = GRAFANA_DIR / "provisioning" / "datasources" / "arbor.yml"
RULES_DIR = REPO_ROOT / "deploy" / "prometheus" / "rules"

# Grafana's own variables. Windows are a few scrape intervals long, as Grafana's
# $__rate_interval is, so a rate over them always has two samples.
BUILTIN_VALUES = {"__rate_interval": "15s", "__interval": "5s", "__range": "1h"}

SCRAPE_INTERVAL_SECONDS = 1
SCRAPES_BEFORE_QUERYING = 4
PROMETHEUS_START_TIMEOUT_SECONDS = 60.0
PROMETHEUS_STOP_TIMEOUT_SECONDS = 15.0
HTTP_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Target:
    """One scraped service: where its metrics are, under its ``service`` label."""

    service: str
    address: str
    metrics_path: str = "/metrics"


@dataclass(frozen=True)
class PrometheusServer:
    url: str

    def get(self, path: str, params: list[tuple[str, str]]) -> Any:
        """GET an API path; Prometheus answers 400 with a JSON body on a bad query."""
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(
                f"{self.url}{path}?{query}", timeout=HTTP_TIMEOUT_SECONDS
            ) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            with error:
                return json.load(error)

    def query(self, expr: str) -> Any:
        return self.get("/api/v1/query", [("query", expr)])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def scrape_config(targets: list[Target]) -> dict[str, Any]:
    """The job ``arbor`` over ``targets``, with the real alert and recording rules."""
    static = [
        {
            "targets": [target.address],
            "labels": {
                "service": target.service,
                "__metrics_path__": target.metrics_path,
            },
        }
        for target in targets
    ]
    return {
        "global": {
            "scrape_interval": f"{SCRAPE_INTERVAL_SECONDS}s",
            "evaluation_interval": f"{SCRAPE_INTERVAL_SECONDS}s",
        },
        "rule_files": [str(RULES_DIR / "*.yml")],
        "scrape_configs": [{"job_name": "arbor", "static_configs": static}],
    }


@contextmanager
def running_prometheus(
    workdir: Path, targets: list[Target]
) -> Iterator[PrometheusServer]:
    """A Prometheus server that has scraped ``targets`` a few times."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is missing: apt-get install -y prometheus")
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(targets)))
    log = workdir / "prometheus.log"
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = PrometheusServer(f"http://127.0.0.1:{port}")
    try:
        _wait_until_scraped(server, process, log)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=PROMETHEUS_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_scraped(
    server: PrometheusServer, process: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + PROMETHEUS_START_TIMEOUT_SECONDS
    check = f'min(count_over_time(up{{job="arbor"}}[1m])) >= {SCRAPES_BEFORE_QUERYING}'
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited during start:\n{log.read_text()}")
        try:
            if server.query(check).get("data", {}).get("result"):
                return
        except (urllib.error.URLError, ConnectionError):
            pass  # not listening yet
        time.sleep(0.5)
    pytest.fail(f"prometheus scraped too little in time:\n{log.read_text()}")


# --- Reading the dashboards ------------------------------------------------------


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    expr: str

    @property
    def id(self) -> str:
        return f"{self.dashboard}:{self.panel}:{self.ref_id}"


def load(path: Path) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those folded inside collapsed rows."""
    found: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in panels(dashboard) if panel["type"] != "row"]


def variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = dashboard.get("templating", {}).get("list", [])
    return found


def panel_queries() -> list[PanelQuery]:
    return [
        PanelQuery(path.stem, panel["title"], target["refId"], target["expr"])
        for path in DASHBOARD_FILES
        for panel in query_panels(load(path))
        for target in panel["targets"]
    ]


_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def used_variables(text: str) -> set[str]:
    return {next(g for g in m.groups() if g) for m in _VARIABLE.finditer(text)}


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Fill Grafana's variables (and its built-in ones) into a query."""
    every = {**values, **BUILTIN_VALUES}

    def value(match: re.Match[str]) -> str:
        return every[next(g for g in match.groups() if g)]

    return _VARIABLE.sub(value, text)


def datasource_uid() -> str:
    provisioned = yaml.safe_load(DATASOURCES_FILE.read_text())["datasources"]
    (prometheus,) = [d for d in provisioned if d["type"] == "prometheus"]
    uid: str = prometheus["uid"]
    return uid
