"""Portal fixtures: one migrated, running portal per module, and customer factories.

Starting a service creates every topic of its namespace, so the API tests share one
portal per module and keep apart by giving every test its own customers.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from arbor_portal.bootstrap import MIGRATIONS, create_app
from arbor_portal.config import PortalSettings
from arbor_portal.handlers import HANDLERS
from arbor_shared.clock import FixedClock
from arbor_shared.events import (
    EventData,
    InvoiceBalanceChanged,
    InvoiceIssued,
    InvoiceLine,
)
from arbor_shared.events.envelope import Envelope
from arbor_shared.kafka.consumer import Context
from arbor_shared.local_issuer import LocalIssuer
from tests.conftest import Namespace
from tests.infra import KafkaHandle, PostgresHandle
from tests.support import migrate, running, service_settings

NOW = datetime(2024, 4, 12, 10, 0, tzinfo=UTC)


@dataclass
class Portal:
    """A running portal app, a client for it and the issuer of its tokens."""

    app: FastAPI
    client: httpx.AsyncClient
    issuer: LocalIssuer
    namespace: Namespace

    def token(self, subject: str, *, roles: tuple[str, ...] = ()) -> str:
        return self.issuer.mint(subject, roles=roles)

    def auth(self, subject: str, *, roles: tuple[str, ...] = ()) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(subject, roles=roles)}"}

    async def apply(self, *events: EventData) -> None:
        """Feed events to the read-model handlers, as the consumer loop would."""
        runtime = self.app.state.runtime
        async with runtime.sessions() as session, session.begin():
            for event in events:
                envelope = Envelope.for_data(event, source="tests", time=NOW)
                ctx = Context(session, runtime.outbox, runtime.clock, envelope)
                await HANDLERS[event.event_type](ctx, event)

    async def customer(self, prefix: str = "cus") -> Customer:
        """A new customer linked, through the operations API, to a new subject."""
        customer_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
        subject = f"idp|{uuid.uuid4().hex[:12]}"
        response = await self.client.post(
            "/v1/ops/identities",
            json={"subject": subject, "customer_id": customer_id},
            headers=self.auth("ops-1", roles=("operator",)),
        )
        assert response.status_code == 201, response.text
        return Customer(self, customer_id, subject)


@dataclass
class Customer:
    portal: Portal
    customer_id: str
    subject: str

    @property
    def headers(self) -> dict[str, str]:
        return self.portal.auth(self.subject)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.portal.client.get(path, headers=self.headers, **kwargs)

    async def post(self, path: str, body: Any) -> httpx.Response:
        return await self.portal.client.post(path, json=body, headers=self.headers)

    async def patch(self, path: str, body: Any) -> httpx.Response:
        return await self.portal.client.patch(path, json=body, headers=self.headers)

    async def invoice(
        self,
        invoice_id: str | None = None,
        *,
        amount: int = 120_000,
        balance: int | None = 120_000,
        issue_date: date = date(2024, 3, 1),
        due_date: date = date(2024, 3, 31),
    ) -> str:
        """Issue an invoice to this customer and, unless ``balance`` is None, a
        ledger balance for it."""
        invoice_id = invoice_id or f"inv-{uuid.uuid4().hex[:8]}"
        events: list[EventData] = [
            InvoiceIssued(
                customer_id=self.customer_id,
                invoice_id=invoice_id,
                currency="EUR",
                amount_minor=amount,
                issue_date=issue_date,
                due_date=due_date,
                issued_at=NOW,
                lines=(
                    InvoiceLine(
                        description="Support plan",
                        quantity=1,
                        unit_amount_minor=amount,
                        amount_minor=amount,
                    ),
                ),
            )
        ]
        if balance is not None:
            events.append(ledger_balance(self.customer_id, invoice_id, amount, balance))
        await self.portal.apply(*events)
        return invoice_id


def ledger_balance(
    customer_id: str,
    invoice_id: str,
    amount: int,
    balance: int,
    *,
    due_date: date = date(2024, 3, 31),
) -> InvoiceBalanceChanged:
    return InvoiceBalanceChanged(
        customer_id=customer_id,
        invoice_id=invoice_id,
        currency="EUR",
        issue_date=date(2024, 3, 1),
        due_date=due_date,
        amount_minor=amount,
        paid_minor=amount - balance,
        credited_minor=0,
        written_off_minor=0,
        balance_minor=balance,
        status="open" if balance > 0 else "settled",
        cause_event_id="e-1",
        cause_event_type="InvoiceIssued",
        changed_at=NOW,
    )


@pytest.fixture(scope="module")
async def portal(
    kafka: KafkaHandle, postgres: PostgresHandle, issuer: LocalIssuer
) -> AsyncIterator[Portal]:
    namespace = Namespace(f"t{uuid.uuid4().hex[:10]}", kafka, postgres, issuer)
    settings = service_settings(
        PortalSettings,
        namespace,
        "portal-api",
        consumers_enabled=False,
        rate_limit_per_second=1000.0,
        rate_limit_burst=1000,
    )
    await migrate(MIGRATIONS, settings)
    app = create_app(settings)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://portal.test"
        ) as client:
            yield Portal(app, client, issuer, namespace)


# 10:30 UTC on 12 April is already 00:30 on 13 April in Kiritimati (UTC+14).
CLOCK_AT = datetime(2024, 4, 12, 10, 30, tzinfo=UTC)
FAR_EAST = "Pacific/Kiritimati"


@pytest.fixture
def fixed_clock(portal: Portal, monkeypatch: pytest.MonkeyPatch) -> FixedClock:
    """The portal's clock stopped at ``CLOCK_AT`` for this test only."""
    clock = FixedClock(CLOCK_AT)
    monkeypatch.setattr(portal.app.state.runtime, "clock", clock)
    return clock
