"""The IBM accounts-receivable sample replayed as ledger facts, checked to the cent.

Every invoice becomes an InvoiceBalanceChanged at issue and an InvoiceSettled on its
settled date, produced to the real ledger topic; cohort moves go to the cohort topic
newest-first. The service's KPIs must equal the reference computed over the CSV
(tests/metrics/ibm_reference.py) for several days, windows and cohort slices; then a
rebuild from the topics into a fresh schema must store exactly the same facts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from arbor_metrics.adapters.tables import invoice_snapshots
from arbor_metrics.bootstrap import MIGRATIONS, create_app
from arbor_metrics.config import MetricsSettings
from arbor_metrics.entrypoints.rebuild import digest_of, rebuild
from arbor_shared import topics
from arbor_shared.events import CohortChanged, InvoiceBalanceChanged, InvoiceSettled
from tests.conftest import Namespace
from tests.metrics import ibm_reference as ref
from tests.support import (
    encode,
    eventually,
    migrate,
    produce,
    running,
    service_settings,
)

DATA = ref.rows()
Record = tuple[bytes | None, bytes, list[tuple[str, bytes]]]
CASES = [
    (date(2014, 1, 31), None),
    (date(2013, 6, 30), None),
    (date(2013, 6, 30), 90),
    (date(2012, 11, 15), 30),
]


def _at(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _ledger_records() -> list[Record]:
    records: list[Record] = []
    for row in DATA:
        common: dict[str, Any] = {
            "customer_id": row.customer,
            "invoice_id": row.invoice,
            "currency": "USD",
            "issue_date": row.issued,
            "due_date": row.due,
            "amount_minor": row.cents,
            "credited_minor": 0,
            "written_off_minor": 0,
        }
        issued = InvoiceBalanceChanged(
            **common,
            paid_minor=0,
            balance_minor=row.cents,
            status="open",
            cause_event_id=f"issue-{row.invoice}",
            cause_event_type="InvoiceIssued",
            changed_at=_at(row.issued),
        )
        settled = InvoiceSettled(
            **common,
            paid_minor=row.cents,
            settled_by="payment",
            settled_at=_at(row.settled),
            settled_date=row.settled,
        )
        records += [encode(issued), encode(settled)]
    return records


def _cohort_records() -> list[Record]:
    customers = {row.customer: row for row in DATA}
    moves = []
    for customer, row in sorted(customers.items()):
        first = CohortChanged(
            customer_id=customer,
            from_cohort=None,
            to_cohort=f"country-{row.country}",
            definition_version=1,
            rule="country",
            features={"country": row.country},
            version=1,
            changed_at=_at(date(2011, 12, 31)),
        )
        moves.append(first)
        if row.paperless.year == 2013:
            moves.append(
                first.model_copy(
                    update={
                        "from_cohort": first.to_cohort,
                        "to_cohort": "paperless",
                        "version": 2,
                        "changed_at": _at(row.paperless),
                    }
                )
            )
    # Newest first: the stale version 1 arrives after version 2 and must lose.
    return [encode(move) for move in reversed(moves)]


@pytest.fixture
async def replayed(
    namespace: Namespace,
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    settings = service_settings(MetricsSettings, namespace, "metrics")
    await migrate(MIGRATIONS, settings)
    app = create_app(settings)
    prefix = namespace.name + "."
    token = namespace.issuer.mint("ops", roles=("operator",))
    async with running(app):
        await produce(
            namespace.kafka.bootstrap, prefix + topics.COHORTS, _cohort_records()
        )
        await produce(
            namespace.kafka.bootstrap, prefix + topics.LEDGER, _ledger_records()
        )
        sessions = app.state.runtime.sessions

        async def all_stored() -> bool:
            async with sessions() as session:
                stored: int | None = await session.scalar(
                    sa.select(sa.func.count()).select_from(invoice_snapshots)
                )
            return stored == 2 * len(DATA)

        await eventually(all_stored, timeout=120)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://metrics",
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            yield client, settings


def _subset(actual: Any, wanted: Any) -> Any:
    """``actual`` cut down to the keys ``wanted`` names, for a readable diff."""
    if isinstance(wanted, dict):
        return {k: _subset(actual[k], v) for k, v in wanted.items()}
    if isinstance(wanted, list):
        return [_subset(a, w) for a, w in zip(actual, wanted, strict=True)]
    return actual


async def _kpis(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/kpis", params={"currency": "USD", **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_replayed_ibm_sample_matches_the_csv_to_the_cent(
    replayed: tuple[httpx.AsyncClient, MetricsSettings], namespace: Namespace
) -> None:
    client, settings = replayed

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
        assert _subset(body, wanted) == wanted, (as_of, window)

    live = await digest_of(settings)
    report = await rebuild(settings, schema=namespace.schema("metrics_rebuild"))
    assert report.digest == live


async def test_cohort_slices_follow_membership_at_issue_or_as_of(
    replayed: tuple[httpx.AsyncClient, MetricsSettings],
) -> None:
    client, _ = replayed
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
            assert _subset(body, wanted) == wanted, (cohort, basis)
