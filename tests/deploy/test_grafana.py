"""Grafana dashboards: their structure, and every query run on a real Prometheus.

promtool cannot parse a lone PromQL expression, so a Prometheus server (Debian's
``prometheus`` package) is started on loopback. It scrapes a small HTTP server in
this process that serves each service's metrics with made-up values, under the
same job and ``service`` labels as the real scrape configuration. Every panel query
then runs through the HTTP API with the dashboard variables filled in, and must
parse and return data.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.prometheus import (
    BUILTIN_VALUES,
    DASHBOARD_FILES,
    PanelQuery,
    PrometheusServer,
    Target,
    datasource_uid,
    load,
    panel_queries,
    panels,
    query_panels,
    running_prometheus,
    substitute,
    used_variables,
    variables,
)

# The value each dashboard variable takes when its queries are run. Each must be a
# label value the exposition below contains (checked by a test).
VARIABLE_VALUES = {
    "cohort": "monthly_card",
    "currency": "EUR",
    "service": "dunning",
    "channel": "email",
    "variant": "control",
}
SERVICES = {
    "ingest": "arbor_ingest",
    "segmentation": "arbor_segmentation",
    "dunning": "arbor_dunning",
    "metrics": "arbor_metrics",
    "portal-api": "arbor_portal",
}
COHORTS = ("all", "monthly_card", "annual_transfer")
CURRENCIES = ("EUR", "USD")
AGING_BUCKETS = ("current", "1_30", "31_60", "61_90", "90_plus")
KPI_GAUGES = {
    "on_time_rate_ratio": 0.87,
    "on_time_amount_rate_ratio": 0.91,
    "days_to_pay_mean_days": 24.5,
    "days_to_pay_p90_days": 41.0,
    "open_ar_minor": 1_250_000,
    "overdue_ar_minor": 310_000,
    "dso_days": 38.2,
    "cei_percent": 82.5,
    "invoices_total": 420,
}
LATENCY_BUCKETS = ("0.005", "0.05", "0.5", "+Inf")


# --- The exposition --------------------------------------------------------------


class Exposition:
    """Text-format metrics of each service; counters grow with every scrape."""

    def __init__(self) -> None:
        self._scrapes = 0
        self._lock = threading.Lock()

    def render(self, service: str) -> str:
        with self._lock:
            self._scrapes += 1
            n = self._scrapes
        prefix = SERVICES[service]
        lines = _pipeline_lines(prefix, n)
        if service == "metrics":
            lines += _kpi_lines()
        if service == "segmentation":
            lines += _cohort_move_lines(prefix, n)
        if service == "dunning":
            lines += _dunning_lines(prefix, n)
        return "\n".join(lines) + "\n"


Labels = dict[str, str]
Samples = list[tuple[Labels, float]]


def _samples(name: str, samples: Samples) -> list[str]:
    lines = []
    for labels, value in samples:
        text = ",".join(f'{key}="{label}"' for key, label in labels.items())
        lines.append(f"{name}{{{text}}} {value}" if text else f"{name} {value}")
    return lines


def _family(name: str, kind: str, samples: Samples) -> list[str]:
    return [f"# TYPE {name} {kind}", *_samples(name, samples)]


def _histogram(name: str, labels: Labels, n: int) -> list[str]:
    # Cumulative buckets: most events fast, a few slow.
    counts = (5 * n, 8 * n, 9 * n, 10 * n)
    buckets = zip(LATENCY_BUCKETS, counts, strict=True)
    return [
        f"# TYPE {name} histogram",
        *_samples(f"{name}_bucket", [({**labels, "le": le}, c) for le, c in buckets]),
        *_samples(f"{name}_sum", [(labels, 0.4 * n)]),
        *_samples(f"{name}_count", [(labels, counts[-1])]),
    ]


def _pipeline_lines(prefix: str, n: int) -> list[str]:
    topic = {"topic": "billing.invoices.v1"}
    event = {"event_type": "InvoiceIssued"}
    outcomes = ("applied", "duplicate", "ignored", "dead_lettered")
    consumed: Samples = [
        ({**topic, **event, "outcome": outcome}, (i + 1) * n)
        for i, outcome in enumerate(outcomes)
    ]
    lag: Samples = [({**topic, "partition": "0"}, 12), ({**topic, "partition": "1"}, 3)]
    return [
        *_family(f"{prefix}_events_consumed_total", "counter", consumed),
        *_family(f"{prefix}_events_produced_total", "counter", [(topic, 3 * n)]),
        *_family(
            f"{prefix}_events_dead_lettered_total",
            "counter",
            [({**topic, "reason": "schema"}, n)],
        ),
        *_histogram(f"{prefix}_handler_duration_seconds", event, n),
        *_histogram(f"{prefix}_batch_duration_seconds", {}, n),
        *_family(f"{prefix}_consumer_lag_records", "gauge", lag),
        *_family(f"{prefix}_outbox_backlog_events", "gauge", [({}, 7)]),
        *_family(f"{prefix}_last_event_age_seconds", "gauge", [({}, 1.5)]),
        *_family(
            f"{prefix}_transient_failures_total", "counter", [({"stage": "db"}, n)]
        ),
    ]


def _kpi_lines() -> list[str]:
    keys = [{"cohort": c, "currency": cur} for c in COHORTS for cur in CURRENCIES]
    lines: list[str] = []
    for name, value in KPI_GAUGES.items():
        lines += _family(f"arbor_metrics_{name}", "gauge", [(k, value) for k in keys])
    aging: Samples = [
        ({**key, "bucket": bucket}, 1000 * (i + 1))
        for key in keys
        for i, bucket in enumerate(AGING_BUCKETS)
    ]
    sizes: Samples = [({"cohort": c}, 100 * (i + 1)) for i, c in enumerate(COHORTS)]
    return [
        *lines,
        *_family("arbor_metrics_aging_minor", "gauge", aging),
        *_family("arbor_metrics_cohort_customers", "gauge", sizes),
        *_family("arbor_metrics_kpi_freshness_seconds", "gauge", [({}, 12)]),
    ]


def _cohort_move_lines(prefix: str, n: int) -> list[str]:
    moves: Samples = [
        ({"from_cohort": "monthly_card", "to_cohort": "annual_transfer"}, 2 * n),
        ({"from_cohort": "annual_transfer", "to_cohort": "monthly_card"}, n),
    ]
    return _family(f"{prefix}_cohort_moves_total", "counter", moves)


def _dunning_lines(prefix: str, n: int) -> list[str]:
    actions: Samples = [
        ({"step": step, "channel": channel, "outcome": outcome, "variant": variant}, n)
        for step in ("reminder_1", "reminder_2", "final_notice")
        for channel in ("email", "sms")
        for outcome in ("sent", "cancelled", "missed", "deferred")
        for variant in ("control", "early_discount")
    ]
    recovered: Samples = [({"currency": cur}, 5000 * n) for cur in CURRENCIES]
    return [
        *_family(f"{prefix}_actions_total", "counter", actions),
        *_family(f"{prefix}_recovered_minor_total", "counter", recovered),
    ]


class _ExpositionHandler(BaseHTTPRequestHandler):
    exposition: Exposition

    def do_GET(self) -> None:
        service = self.path.strip("/").removesuffix("/metrics")
        if service not in SERVICES:
            self.send_error(404)
            return
        body = self.exposition.render(service).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output free of one line per scrape."""


@pytest.fixture(scope="module")
def exposition_port() -> Iterator[int]:
    """Serve every service's test metrics at /<service>/metrics on loopback."""
    handler = type("Handler", (_ExpositionHandler,), {"exposition": Exposition()})
    http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    serving = threading.Thread(target=http.serve_forever, daemon=True)
    serving.start()
    try:
        yield http.server_address[1]
    finally:
        http.shutdown()
        http.server_close()
        serving.join()


@pytest.fixture(scope="module")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, exposition_port: int
) -> Iterator[PrometheusServer]:
    """A Prometheus server that has scraped the test metrics a few times."""
    targets = [
        Target(service, f"127.0.0.1:{exposition_port}", f"/{service}/metrics")
        for service in SERVICES
    ]
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), targets) as server:
        yield server


# --- Structure -------------------------------------------------------------------


def test_every_metric_the_services_expose_is_on_a_dashboard() -> None:
    expressions = " ".join(query.expr for query in panel_queries())
    # Pipeline metrics are selected across services by their name's tail.
    pipeline = [
        "events_consumed_total",
        "events_produced_total",
        "events_dead_lettered_total",
        "handler_duration_seconds_bucket",
        "batch_duration_seconds_bucket",
        "consumer_lag_records",
        "outbox_backlog_events",
        "last_event_age_seconds",
        "transient_failures_total",
    ]
    named = [
        *(f"arbor_metrics_{name}" for name in KPI_GAUGES),
        "arbor_metrics_aging_minor",
        "arbor_metrics_cohort_customers",
        "arbor_metrics_kpi_freshness_seconds",
        "arbor_segmentation_cohort_moves_total",
        "arbor_dunning_actions_total",
        "arbor_dunning_recovered_minor_total",
    ]
    missing = [t for t in pipeline if f"arbor_.+_{t}" not in expressions]
    missing += [name for name in named if not re.search(rf"\b{name}\b", expressions)]

    assert not missing


def test_dashboards_exist_and_their_uids_are_unique() -> None:
    uids = [load(path)["uid"] for path in DASHBOARD_FILES]

    assert len(DASHBOARD_FILES) >= 4
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.stem)
def test_dashboard_has_uid_title_and_unique_panel_ids(path: Path) -> None:
    dashboard = load(path)
    ids = [panel["id"] for panel in panels(dashboard)]

    assert re.fullmatch(r"[a-z0-9-]{1,40}", dashboard["uid"])
    assert dashboard["title"].startswith("Arbor / ")
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.stem)
def test_panels_fit_the_grid_without_overlapping(path: Path) -> None:
    occupied: set[tuple[int, int]] = set()
    for panel in panels(load(path)):
        grid = panel["gridPos"]
        assert min(grid["w"], grid["h"]) >= 1, panel["title"]
        assert min(grid["x"], grid["y"]) >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.stem)
def test_every_panel_queries_the_provisioned_prometheus(path: Path) -> None:
    expected = {"type": "prometheus", "uid": datasource_uid()}
    for panel in query_panels(load(path)):
        assert panel["datasource"] == expected, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", expected) == expected, panel["title"]
            assert target["expr"].strip(), panel["title"]


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.stem)
def test_every_variable_a_panel_uses_is_defined(path: Path) -> None:
    dashboard = load(path)
    defined = {variable["name"] for variable in variables(dashboard)}
    texts = [panel["title"] for panel in panels(dashboard)] + [
        target["expr"]
        for panel in query_panels(dashboard)
        for target in panel["targets"]
    ]
    used = {name for text in texts for name in used_variables(text)}

    assert used - set(BUILTIN_VALUES) <= defined
    assert defined <= set(VARIABLE_VALUES), "a variable the tests cannot fill in"


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.stem)
def test_variables_query_the_provisioned_prometheus(path: Path) -> None:
    expected = {"type": "prometheus", "uid": datasource_uid()}
    for variable in variables(load(path)):
        assert variable["type"] == "query"
        assert variable["datasource"] == expected
        assert re.fullmatch(r"label_values\((.+), (\w+)\)", variable["definition"])


# --- Queries against Prometheus --------------------------------------------------


@pytest.mark.parametrize("query", panel_queries(), ids=lambda query: query.id)
def test_panel_query_parses_and_returns_data(
    prometheus: PrometheusServer, query: PanelQuery
) -> None:
    answer = prometheus.query(substitute(query.expr, VARIABLE_VALUES))

    assert answer["status"] == "success", answer.get("error")
    assert answer["data"]["result"], (
        f"no data for {substitute(query.expr, VARIABLE_VALUES)}"
    )


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.stem)
def test_variable_values_include_the_value_the_tests_use(
    prometheus: PrometheusServer, path: Path
) -> None:
    for variable in variables(load(path)):
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["definition"])
        assert match is not None
        selector, label = match.groups()
        answer = prometheus.get(
            f"/api/v1/label/{label}/values", [("match[]", selector)]
        )

        assert answer["status"] == "success", answer.get("error")
        assert VARIABLE_VALUES[variable["name"]] in answer["data"]


def test_recording_rules_load_and_record(prometheus: PrometheusServer) -> None:
    answer = prometheus.get("/api/v1/rules", [("type", "record")])
    rules = [r for g in answer["data"]["groups"] for r in g["rules"]]

    assert rules
    assert all(rule["health"] != "err" for rule in rules), rules
