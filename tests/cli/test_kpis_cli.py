"""``arbor kpis show``: the KPIs metrics computed from the ledger, over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from arbor_metrics.bootstrap import MIGRATIONS, create_app
from arbor_metrics.config import MetricsSettings
from arbor_shared import topics
from tests.cli.harness import arbor, printed_json, said, serving
from tests.conftest import Namespace
from tests.samples import joined_punctual, open_balance
from tests.support import (
    encode,
    eventually,
    migrate,
    produce,
    running,
    service_settings,
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
        await produce(bootstrap, prefix + topics.LEDGER, [encode(open_balance())])
        await produce(bootstrap, prefix + topics.COHORTS, [encode(joined_punctual())])
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
