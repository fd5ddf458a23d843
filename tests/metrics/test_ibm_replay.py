"""The IBM accounts-receivable sample imported through ingest, checked to the cent.

The CSV goes through ingest's import endpoint with the IBM preset, chunk by chunk, as
an operator's import does. Ingest's ledger turns the rows into ledger facts and its
outbox relay publishes them to the namespace's ledger topic, where the metrics service,
started beside it, consumes them. Its KPIs must equal the reference computed straight
from the CSV (tests/metrics/ibm_reference.py) for several days, windows and cohort
slices; then a rebuild from the topics into a fresh schema must store the same facts.

The cohort moves are synthetic: the test produces them to the cohort topic itself
(by country, then "paperless" from a 2013 PaperlessDate), newest version first. The
real segmentation service assigns cohorts from behaviour rules and a risk model
evaluated at the service's clock, which no computation over the CSV could check
independently, and the import does not carry PaperlessDate at all.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from arbor_ingest import bootstrap as ingest
from arbor_ingest.import_client import ImportTotals, Publisher, send_file
from arbor_metrics import bootstrap as metrics
from arbor_metrics.adapters.tables import messaging as metrics_messaging
from arbor_metrics.config import MetricsSettings
from arbor_metrics.entrypoints.rebuild import digest_of, rebuild
from arbor_shared import topics
from arbor_shared.local_issuer import LocalIssuer
from arbor_shared.runtime import ServiceRuntime
from tests.conftest import Namespace
from tests.conftest import _delete_topics as delete_topics
from tests.infra import KafkaHandle, PostgresHandle
from tests.ingest.conftest import IMPORTER, ingest_settings
from tests.metrics import ibm_facts as facts
from tests.metrics import ibm_reference as ref
from tests.support import (
    eventually,
    header,
    migrate,
    produce,
    published,
    running,
    service_settings,
)

DATA = ref.rows()
CASES = [
    (date(2014, 1, 31), None),
    (date(2013, 6, 30), None),
    (date(2013, 6, 30), 90),
    (date(2012, 11, 15), 30),
]
# The replay takes well under a minute even on two busy cores; the bound only keeps
# a stuck consumer from hanging the suite.
APPLIED_WITHIN_SECONDS = 180


def _runtime(app: FastAPI) -> ServiceRuntime:
    runtime: ServiceRuntime = app.state.runtime
    return runtime


async def _import_csv(ingest_app: FastAPI) -> ImportTotals:
    transport = httpx.ASGITransport(app=ingest_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://ingest", timeout=300
    ) as http:
        return await send_file(
            http,
            ref.CSV,
            publisher=Publisher(IMPORTER.key_id, IMPORTER.secret),
            params={"mapping": "ibm", "currency": "USD"},
            rows_per_chunk=500,
        )


async def _published_for_metrics(ingest_app: FastAPI) -> set[str]:
    """Ids of every event ingest published on a topic the metrics service consumes."""
    records = await published(_runtime(ingest_app), *metrics.SOURCE_TOPICS)
    return {header(record, "ce_id") for record in records}


async def _inbox_size(metrics_app: FastAPI) -> int:
    async with _runtime(metrics_app).sessions() as session:
        count = await session.scalar(
            sa.select(sa.func.count()).select_from(metrics_messaging.inbox)
        )
        return int(count or 0)


async def _inbox_outcomes(metrics_app: FastAPI) -> dict[str, str]:
    inbox = metrics_messaging.inbox
    async with _runtime(metrics_app).sessions() as session:
        rows = await session.execute(sa.select(inbox.c.event_key, inbox.c.outcome))
        return {key: outcome for key, outcome in rows}


async def _await_all_applied(
    ingest_app: FastAPI, metrics_app: FastAPI, produced: set[str]
) -> None:
    """Wait until metrics has recorded every event meant for it, then check each
    was applied: a dead-lettered fact would leave the KPIs short."""
    wanted = await _published_for_metrics(ingest_app) | produced

    async def caught_up() -> bool:
        return await _inbox_size(metrics_app) >= len(wanted)

    await eventually(caught_up, timeout=APPLIED_WITHIN_SECONDS)
    assert await _inbox_outcomes(metrics_app) == dict.fromkeys(wanted, "applied")


@dataclass(frozen=True)
class Replay:
    client: httpx.AsyncClient
    settings: MetricsSettings
    namespace: Namespace


@asynccontextmanager
async def _started(
    namespace: Namespace, settings: MetricsSettings
) -> AsyncIterator[tuple[FastAPI, FastAPI]]:
    """Ingest and metrics, migrated and running in-process on the one namespace."""
    ingest_config = ingest_settings(namespace)
    await migrate(ingest.MIGRATIONS, ingest_config)
    await migrate(metrics.MIGRATIONS, settings)
    ingest_app = ingest.create_app(ingest_config)
    metrics_app = metrics.create_app(settings)
    async with running(ingest_app), running(metrics_app):
        yield ingest_app, metrics_app


async def _replay(
    namespace: Namespace, ingest_app: FastAPI, metrics_app: FastAPI
) -> None:
    """Import the CSV through ingest beside the synthetic cohort moves; wait for
    metrics to apply all of it."""
    moves = facts.cohort_moves(DATA)
    cohorts_topic = f"{namespace.name}.{topics.COHORTS}"
    await produce(namespace.kafka.bootstrap, cohorts_topic, facts.cohort_records(moves))
    totals = await _import_csv(ingest_app)
    assert totals.rejected == []
    assert (totals.invoices, totals.payments) == (len(DATA), len(DATA))
    produced = {facts.move_id(move) for move in moves}
    await _await_all_applied(ingest_app, metrics_app, produced)


@pytest.fixture(scope="module")
async def replayed(
    kafka: KafkaHandle, postgres: PostgresHandle, issuer: LocalIssuer
) -> AsyncIterator[Replay]:
    """One replay for the module's tests, which only read: it is the slow part."""
    namespace = Namespace(f"t{uuid.uuid4().hex[:10]}", kafka, postgres, issuer)
    settings = service_settings(MetricsSettings, namespace, "metrics")
    operator = {"Authorization": f"Bearer {issuer.mint('ops', roles=('operator',))}"}
    try:
        async with _started(namespace, settings) as (ingest_app, metrics_app):
            await _replay(namespace, ingest_app, metrics_app)
            transport = httpx.ASGITransport(app=metrics_app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://metrics", headers=operator
            ) as client:
                yield Replay(client, settings, namespace)
    finally:
        await delete_topics(kafka.bootstrap, f"{namespace.name}.")


async def _kpis(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/kpis", params={"currency": "USD", **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_replayed_ibm_sample_matches_the_csv_to_the_cent(
    replayed: Replay,
) -> None:
    client, settings = replayed.client, replayed.settings

    everything = await _kpis(client, as_of="2014-01-31")
    assert everything["invoices"] == 2_466
    assert everything["on_time"]["paid_on_time"] == 1_589
    assert everything["receivables"]["credit_sales_minor"] == 14_770_318
    assert everything["days_to_pay"]["median_days"] == 26
    assert round(everything["days_to_pay"]["mean_days"], 3) == 26.445

    for as_of, window in CASES:
        params: dict[str, Any] = {"as_of": as_of.isoformat()}
        if window:
            params["window_days"] = window
        wanted = ref.expected(DATA, as_of, window)
        body = await _kpis(client, **params)
        assert ref.subset(body, wanted) == wanted, (as_of, window)

    live = await digest_of(settings)
    report = await rebuild(
        settings, schema=replayed.namespace.schema("metrics_rebuild")
    )
    assert report.digest == live


async def test_cohort_slices_follow_membership_at_issue_or_as_of(
    replayed: Replay,
) -> None:
    client = replayed.client
    as_of = date(2013, 12, 31)
    cohorts = {"paperless", *(f"country-{row.country}" for row in DATA)}
    for cohort in sorted(cohorts):
        for basis in ("issued", "as_of"):
            members = [
                row
                for row in DATA
                if ref.cohort_on(
                    row.paperless,
                    row.country,
                    row.issued if basis == "issued" else as_of,
                )
                == cohort
            ]
            wanted = ref.expected(members, as_of, None)
            body = await _kpis(
                client, as_of=as_of.isoformat(), cohort=cohort, cohort_basis=basis
            )
            assert ref.subset(body, wanted) == wanted, (cohort, basis)
