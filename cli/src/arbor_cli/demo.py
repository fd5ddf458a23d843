"""What ``make run`` feeds and shows: a simulated company, or IBM's AR sample."""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from arbor_cli.feed_gate import FeedGate
from arbor_cli.publisher import IngestPublisher, PublishStats
from arbor_cli.simulator import Simulation
from arbor_shared.local_issuer import LocalIssuer
from arbor_shared.money import format_amount

REPO = Path(__file__).resolve().parents[3]
KEYS = REPO / ".local" / "publisher-keys.json"
INGEST = "http://127.0.0.1:8001"
METRICS = "http://127.0.0.1:8004"
IBM_CSV = REPO.parent / "shared" / "data" / "ibm-accounts-receivable.csv"
DEMO_KEY_ID = "demo-simulator"


DEMO_SCOPES = ["events:write", "imports:write", "clock:write"]


def ensure_publisher_keys() -> str:
    """The publisher list ingest trusts under ``make run``; the secret is kept local."""
    entries: list[dict[str, Any]] = (
        json.loads(KEYS.read_text()) if KEYS.exists() else []
    )
    secret = entries[0]["secret"] if entries else secrets.token_hex(32)
    entry = {"key_id": DEMO_KEY_ID, "secret": secret, "scopes": DEMO_SCOPES}
    KEYS.parent.mkdir(parents=True, exist_ok=True)
    KEYS.write_text(json.dumps([entry]))
    KEYS.chmod(0o600)
    return KEYS.read_text()


def _secret() -> str:
    entries: list[dict[str, str]] = json.loads(ensure_publisher_keys())
    return entries[0]["secret"]


PROGRESS = PublishStats()
"""What the running feed has published so far, for the live summary."""


async def feed(
    dataset: str, issuer: LocalIssuer, *, speed: float, gate: FeedGate | None = None
) -> None:
    """Publish the dataset through ingest, printing progress.

    With ``gate``, the simulated company waits for the services at every clock step.
    """
    if dataset == "ibm":
        _import_ibm()
        return
    simulation = Simulation(customers=2_000, start=date(2025, 1, 1), months=12)
    async with (
        httpx.AsyncClient(base_url=INGEST, timeout=60) as client,
        gate or contextlib.nullcontext(),
    ):
        publisher = IngestPublisher(client, key_id=DEMO_KEY_ID, secret=_secret())
        publisher.stats = PROGRESS
        sys.stdout.write("feeding a simulated company of 2,000 customers...\n")
        stats = await publisher.publish(simulation.events(), speed=speed, gate=gate)
    sys.stdout.write(
        f"fed {stats.sent:,} events ({stats.accepted:,} new, {stats.duplicate:,} "
        f"already known, {len(stats.rejected)} rejected) at {stats.rate():,.0f}/s\n"
    )


def _import_ibm() -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "arbor_cli.main",
            "import",
            "ar-csv",
            str(IBM_CSV),
            "--mapping",
            "ibm",
            "--currency",
            "USD",
            "--url",
            INGEST,
            "--key-id",
            DEMO_KEY_ID,
            "--secret",
            _secret(),
        ],
        check=False,
    )


async def report(issuer: LocalIssuer) -> None:
    """Print the headline KPIs per cohort and currency from the metrics service."""
    async with httpx.AsyncClient(base_url=METRICS, timeout=10) as client:
        try:
            exposition = (await client.get("/metrics")).text
        except httpx.TransportError:
            sys.stdout.write("metrics is not answering yet\n")
            return
    table = _kpi_table(exposition)
    sys.stdout.write(
        f"\nfed {PROGRESS.sent:,} events at {PROGRESS.rate():,.0f}/s; simulated "
        f"time {PROGRESS.simulated_now or '-'}\n"
    )
    if not table:
        sys.stdout.write("no KPIs yet\n")
        return
    sizes = {cohort: kpis for (cohort, currency), kpis in table.items() if not currency}
    header = (
        f"{'cohort':<22}{'customers':>10}  {'ccy':<5}{'invoices':>9}{'on-time':>9}"
        f"{'days to pay':>12}{'overdue AR':>16}"
    )
    rows = [header, "-" * len(header)]
    for (cohort, currency), kpis in sorted(table.items()):
        if not currency or not kpis.get("invoices_total"):
            continue
        customers = sizes.get(cohort, {}).get("cohort_customers")
        rows.append(
            f"{cohort:<22}{_count(customers):>10}  {currency:<5}"
            f"{kpis['invoices_total']:>9,.0f}"
            f"{_percent(kpis.get('on_time_rate_ratio')):>9}"
            f"{kpis.get('days_to_pay_mean_days', 0):>12.1f}"
            f"{format_amount(int(kpis.get('overdue_ar_minor', 0)), currency):>16}"
        )
    sys.stdout.write("\n".join(["", "KPIs per cohort:", *rows, ""]) + "\n")


def _kpi_table(exposition: str) -> dict[tuple[str, str], dict[str, float]]:
    table: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            labels = sample.labels
            if not sample.name.startswith("arbor_metrics_") or "cohort" not in labels:
                continue
            key = (labels["cohort"], labels.get("currency", ""))
            table[key][sample.name.removeprefix("arbor_metrics_")] = sample.value
    return table


def _count(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
