"""Fixtures for segmentation's tests: the service in-process, tokens, events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from arbor_segmentation.bootstrap import MIGRATIONS, create_app
from arbor_segmentation.config import SegmentationSettings
from arbor_shared.events import ClockAdvanced, CustomerCreated, EventData, InvoiceIssued
from tests.conftest import Namespace
from tests.support import (
    encode,
    eventually,
    migrate,
    produce,
    read_topic,
    running,
    service_settings,
)


@dataclass
class Service:
    """A running segmentation app with helpers to feed it and read what it says."""

    app: FastAPI
    namespace: Namespace
    http: httpx.AsyncClient
    operator: dict[str, str]

    def topic(self, base: str) -> str:
        return f"{self.namespace.name}.{base}"

    async def send(self, *events: EventData) -> None:
        for event in events:
            await produce(
                self.namespace.kafka.bootstrap, self.topic(event.topic), [encode(event)]
            )

    async def advance_clock(self, moment: datetime) -> None:
        """Publish simulated time; return once the service's clock shows it."""
        clock = self.app.state.runtime.clock
        await self.send(ClockAdvanced(now=moment))

        async def advanced() -> bool:
            return bool(clock.now() == moment)

        await eventually(advanced)

    async def read(self, base: str, count: int) -> list[dict[str, Any]]:
        records = await read_topic(
            self.namespace.kafka.bootstrap, self.topic(base), count
        )
        return [orjson.loads(r.value) for r in records]


Start = Callable[..., Any]


@pytest.fixture
def start_segmentation(namespace: Namespace) -> Start:
    """Start the service in-process; keyword arguments override settings."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Service]:
        values = {"timer_poll_seconds": 0.2, "rescore_poll_seconds": 0.2} | overrides
        settings = service_settings(
            SegmentationSettings, namespace, "segmentation", **values
        )
        await migrate(MIGRATIONS, settings)
        app = create_app(settings)
        token = namespace.issuer.mint("ops-1", roles=("operator",))
        async with (
            running(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://segmentation"
            ) as client,
        ):
            yield Service(app, namespace, client, {"Authorization": f"Bearer {token}"})

    return start


def customer(customer_id: str, **changes: Any) -> CustomerCreated:
    values: dict[str, Any] = {
        "customer_id": customer_id,
        "name": "Acme",
        "country": "DE",
        "time_zone": "Europe/Berlin",
        "currency": "EUR",
        "billing_cycle": "monthly",
        "payment_method": "bank_transfer",
        "started_on": date(2020, 1, 1),
    }
    return CustomerCreated(**(values | changes))


def invoice(
    customer_id: str, invoice_id: str, issued: date, due: date, amount: int = 10_000
) -> InvoiceIssued:
    return InvoiceIssued(
        customer_id=customer_id,
        invoice_id=invoice_id,
        currency="EUR",
        amount_minor=amount,
        issue_date=issued,
        due_date=due,
        issued_at=datetime.combine(issued, datetime.min.time(), UTC),
    )
