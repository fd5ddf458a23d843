"""``arbor kpis show``: the KPIs metrics computed from the ledger, over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from arbor_metrics.bootstrap import MIGRATIONS, create_app
from arbor_metrics.config import MetricsSettings
from arbor_shared import topics
from arbor_shared.events import CohortChanged, InvoiceBalanceChanged
from tests.cli.harness import arbor, printed_json, said, serving
from tests.conftest import Namespace
from tests.support import (
    encode,
    eventually,
    migrate,
    produce,
    running,
    service_settings,
)

OPEN_INVOICE = InvoiceBalanceChanged(
    customer_id="cus-1",
    invoice_id="inv-1",
    currency="EUR",
    issue_date=date(2024, 1, 1),
    due_date=date(2024, 1, 31),
    amount_minor=10_000,
    paid_minor=0,
    credited_minor=0,
    written_off_minor=0,
    balance_minor=10_000,
    status="open",
    cause_event_id="issue-1",
    cause_event_type="InvoiceIssued",
    changed_at=datetime(2024, 1, 1, 9, tzinfo=UTC),
)
JOINED_PUNCTUAL = CohortChanged(
    customer_id="cus-1",
    from_cohort=None,
    to_cohort="punctual",
    definition_version=1,
    rule="on_time_rate >= 0.9",
    features={"on_time_rate": 1.0},
    version=1,
    changed_at=datetime(2024, 1, 1, tzinfo=UTC),
)


@pytest.fixture
async def metrics(namespace: Namespace) -> AsyncIterator[list[str]]:
    """Metrics on a loopback port, fed one open invoice of a punctual customer."""
    settings = service_settings(MetricsSettings, namespace, "metrics", clock="event")
    await migrate(MIGRATIONS, settings)
    app = create_app(settings)
    token = namespace.issuer.mint("ops-1", roles=("operator",))
    prefix, bootstrap = namespace.name + ".", namespace.kafka.bootstrap
    async with running(app), serving(app) as url:
        await produce(bootstrap, prefix + topics.LEDGER, [encode(OPEN_INVOICE)])
        await produce(bootstrap, prefix + topics.COHORTS, [encode(JOINED_PUNCTUAL)])
        yield ["--url", url, "--token", token]


async def _shown(options: list[str], *slice_: str) -> dict[str, Any] | None:
    result = await arbor(
        "kpis", "show", "--as-of", "2024-03-15", "--currency", "EUR", *slice_, *options
    )
    body: dict[str, Any] = printed_json(result)
    return body if body["invoices"] else None


async def test_kpis_show_the_overdue_invoice_in_its_cohort(
    metrics: list[str],
) -> None:
    everyone = await eventually(lambda: _shown(metrics))
    punctual = await eventually(lambda: _shown(metrics, "--cohort", "punctual"))

    assert (everyone["as_of"], everyone["currency"]) == ("2024-03-15", "EUR")
    assert (everyone["cohort"], everyone["invoices"]) == ("all", 1)
    assert everyone["aging"]["overdue_ar_minor"] == 10_000
    assert everyone["aging"]["current_ar_minor"] == 0
    assert (punctual["cohort"], punctual["invoices"]) == ("punctual", 1)


async def test_kpis_for_an_impossible_date_exit_1_naming_the_parameter(
    metrics: list[str],
) -> None:
    result = await arbor(
        "kpis", "show", "--as-of", "2024-02-30", "--currency", "EUR", *metrics
    )

    assert result.exit_code == 1
    assert said(result).startswith("422 ")
    assert '"loc":["query","as_of"]' in said(result)
