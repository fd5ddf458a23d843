"""The KPI API's access rules and series, and gauges that move with the clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from arbor_metrics.bootstrap import MIGRATIONS, create_app
from arbor_metrics.config import MetricsSettings
from arbor_shared import topics
from arbor_shared.events import ClockAdvanced
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


def _tick(day: date) -> ClockAdvanced:
    return ClockAdvanced(now=datetime(day.year, day.month, day.day, 12, tzinfo=UTC))


@pytest.fixture
async def service(namespace: Namespace) -> AsyncIterator[FastAPI]:
    settings = service_settings(
        MetricsSettings,
        namespace,
        "metrics",
        clock="event",
        gauge_refresh_seconds=0.2,
    )
    await migrate(MIGRATIONS, settings)
    app = create_app(settings)
    prefix = namespace.name + "."
    async with running(app):
        bootstrap = namespace.kafka.bootstrap
        await produce(bootstrap, prefix + topics.LEDGER, [encode(open_balance())])
        await produce(bootstrap, prefix + topics.COHORTS, [encode(joined_punctual())])
        yield app


def _gauge(app: FastAPI, name: str, **labels: str) -> float | None:
    value: float | None = app.state.runtime.metrics.registry.get_sample_value(
        "arbor_metrics_" + name, labels
    )
    return value


async def test_aging_gauges_move_with_the_clock_without_new_facts(
    service: FastAPI, namespace: Namespace
) -> None:
    clock_topic = namespace.name + "." + topics.CLOCK
    eur = {"cohort": "all", "currency": "EUR"}

    await produce(
        namespace.kafka.bootstrap, clock_topic, [encode(_tick(date(2024, 1, 15)))]
    )

    async def current() -> bool:
        return _gauge(service, "aging_minor", **eur, bucket="current") == 10_000

    await eventually(current)
    assert _gauge(service, "overdue_ar_minor", **eur) == 0
    assert _gauge(service, "cohort_customers", cohort="punctual") == 1
    assert _gauge(service, "open_ar_minor", cohort="punctual", currency="EUR") == 10_000

    await produce(
        namespace.kafka.bootstrap, clock_topic, [encode(_tick(date(2024, 3, 15)))]
    )

    async def past_due() -> bool:
        return _gauge(service, "aging_minor", **eur, bucket="31_60") == 10_000

    await eventually(past_due)
    assert _gauge(service, "aging_minor", **eur, bucket="current") == 0
    assert _gauge(service, "overdue_ar_minor", **eur) == 10_000
    # The only invoice fell due before the 30-day window: no rate, not a zero.
    assert _gauge(service, "on_time_rate_ratio", **eur) is None
    freshness = _gauge(service, "kpi_freshness_seconds")
    assert freshness is not None
    assert freshness >= 0


async def test_gauges_and_the_kpi_api_give_the_same_numbers_for_the_clock_day(
    service: FastAPI, namespace: Namespace
) -> None:
    # Operators read Grafana (the gauges) and other systems read /v1/kpis: for the
    # service's current day and the gauges' window, both must say the same thing.
    clock_topic = namespace.name + "." + topics.CLOCK
    await produce(
        namespace.kafka.bootstrap, clock_topic, [encode(_tick(date(2024, 3, 15)))]
    )

    async def refreshed() -> bool:
        eur = {"cohort": "all", "currency": "EUR"}
        return _gauge(service, "aging_minor", **eur, bucket="31_60") == 10_000

    await eventually(refreshed)
    operator = namespace.issuer.mint("ops", roles=("operator",))
    window = service.state.runtime.settings.gauge_window_days
    async with await _client(service, operator) as client:
        for cohort in ("all", "punctual"):
            params = {"as_of": "2024-03-15", "currency": "EUR", "window_days": window}
            if cohort != "all":
                params["cohort"] = cohort
            response = await client.get("/v1/kpis", params=params)
            aging = response.json()["aging"]
            labels = {"cohort": cohort, "currency": "EUR"}

            assert aging["open_ar_minor"] == _gauge(service, "open_ar_minor", **labels)
            assert aging["overdue_ar_minor"] == _gauge(
                service, "overdue_ar_minor", **labels
            )
            for bucket in aging["buckets"]:
                assert bucket["amount_minor"] == _gauge(
                    service, "aging_minor", **labels, bucket=bucket["bucket"]
                )


async def _client(app: FastAPI, token: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://m", headers=headers
    )


async def test_kpis_need_an_operator_token(
    service: FastAPI, namespace: Namespace
) -> None:
    params = {"as_of": "2024-03-15", "currency": "EUR"}
    customer = namespace.issuer.mint("cus-1", roles=("customer",))
    async with await _client(service, None) as anonymous:
        assert (await anonymous.get("/v1/kpis", params=params)).status_code == 401
    async with await _client(service, customer) as client:
        assert (await client.get("/v1/kpis", params=params)).status_code == 403
        series = await client.get(
            "/v1/kpis/series",
            params={**params, "from": "2024-01-01", "to": "2024-02-01"},
        )
        assert series.status_code == 403


async def test_bad_queries_are_refused_naming_the_field(
    service: FastAPI, namespace: Namespace
) -> None:
    operator = namespace.issuer.mint("ops", roles=("operator",))
    async with await _client(service, operator) as client:
        missing = await client.get("/v1/kpis", params={"as_of": "2024-03-15"})
        assert missing.status_code == 422
        assert missing.json()["detail"][0]["loc"] == ["query", "currency"]
        backwards = await client.get(
            "/v1/kpis/series",
            params={"currency": "EUR", "from": "2024-03-01", "to": "2024-01-01"},
        )
        assert backwards.status_code == 422
        assert "before" in backwards.json()["detail"]


async def test_series_answers_each_month_end_from_the_stored_facts(
    service: FastAPI, namespace: Namespace
) -> None:
    operator = namespace.issuer.mint("ops", roles=("operator",))
    async with await _client(service, operator) as client:

        async def stored() -> dict[str, Any] | None:
            response = await client.get(
                "/v1/kpis", params={"as_of": "2024-01-31", "currency": "EUR"}
            )
            body: dict[str, Any] = response.json()
            return body if body["invoices"] == 1 else None

        await eventually(stored)
        response = await client.get(
            "/v1/kpis/series",
            params={
                "currency": "EUR",
                "from": "2024-01-01",
                "to": "2024-04-15",
                "step": "month",
                "cohort": "punctual",
            },
        )
        history = await client.get("/v1/cohorts/memberships/cus-1")

    points = response.json()["points"]
    assert [p["as_of"] for p in points] == [
        "2024-01-31",
        "2024-02-29",
        "2024-03-31",
        "2024-04-15",
    ]
    assert [p["aging"]["overdue_ar_minor"] for p in points] == [
        0,
        10_000,
        10_000,
        10_000,
    ]
    assert [p["on_time"]["invoices_due"] for p in points] == [1, 1, 1, 1]
    assert history.json()["memberships"] == [
        {"cohort": "punctual", "valid_from": "2024-01-01T00:00:00Z", "valid_to": None}
    ]
