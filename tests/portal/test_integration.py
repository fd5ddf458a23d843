"""The portal against the real broker: events in, read model; actions out, topics."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import httpx
import pytest

from arbor_portal.bootstrap import MIGRATIONS, create_app
from arbor_portal.config import PortalSettings
from arbor_shared import topics
from arbor_shared.events import (
    Allocation,
    InvoiceBalanceChanged,
    InvoiceIssued,
    PaymentReceived,
)
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

pytestmark = pytest.mark.integration

CUSTOMER = "cus-int-1"
SUBJECT = "idp|int-1"


def _issued() -> InvoiceIssued:
    return InvoiceIssued(
        customer_id=CUSTOMER,
        invoice_id="inv-int-1",
        currency="EUR",
        amount_minor=50_000,
        issue_date=date(2024, 3, 1),
        due_date=date(2024, 3, 31),
        issued_at=datetime(2024, 3, 1, 9, tzinfo=UTC),
    )


def _balance(balance: int) -> InvoiceBalanceChanged:
    return InvoiceBalanceChanged(
        customer_id=CUSTOMER,
        invoice_id="inv-int-1",
        currency="EUR",
        issue_date=date(2024, 3, 1),
        due_date=date(2024, 3, 31),
        amount_minor=50_000,
        paid_minor=50_000 - balance,
        credited_minor=0,
        written_off_minor=0,
        balance_minor=balance,
        status="open",
        cause_event_id="pay-int-1",
        cause_event_type="PaymentReceived",
        changed_at=datetime(2024, 3, 20, tzinfo=UTC),
    )


async def test_events_on_the_topics_reach_the_read_model_and_a_dispute_reaches_cases(
    namespace: Namespace,
) -> None:
    settings = service_settings(PortalSettings, namespace, "portal-api")
    await migrate(MIGRATIONS, settings)
    name = namespace.kafka_settings().topic_prefix + "."
    app = create_app(settings)
    ops = {
        "Authorization": f"Bearer {namespace.issuer.mint('ops', roles=('operator',))}"
    }
    customer = {"Authorization": f"Bearer {namespace.issuer.mint(SUBJECT)}"}
    transport = httpx.ASGITransport(app=app)

    async with (
        running(app),
        httpx.AsyncClient(transport=transport, base_url="http://portal.test") as client,
    ):
        linked = await client.post(
            "/v1/ops/identities",
            json={"subject": SUBJECT, "customer_id": CUSTOMER},
            headers=ops,
        )
        assert linked.status_code == 201
        await produce(
            namespace.kafka.bootstrap, name + topics.INVOICES, [encode(_issued())]
        )
        await produce(
            namespace.kafka.bootstrap,
            name + topics.PAYMENTS,
            [
                encode(
                    PaymentReceived(
                        customer_id=CUSTOMER,
                        payment_id="pay-int-1",
                        currency="EUR",
                        amount_minor=20_000,
                        received_at=datetime(2024, 3, 20, tzinfo=UTC),
                        allocations=(
                            Allocation(invoice_id="inv-int-1", amount_minor=20_000),
                        ),
                    )
                )
            ],
        )
        await produce(
            namespace.kafka.bootstrap, name + topics.LEDGER, [encode(_balance(30_000))]
        )

        async def payment_listed() -> list[str] | None:
            page = (await client.get("/v1/payments", headers=customer)).json()
            return [p["id"] for p in page["items"]] or None

        async def balance_known() -> int | None:
            detail = await client.get("/v1/invoices/inv-int-1", headers=customer)
            if detail.status_code != 200:
                return None
            balance: int | None = detail.json()["balance_minor"]
            return balance

        assert await eventually(payment_listed) == ["pay-int-1"]
        assert await eventually(balance_known) == 30_000

        filed = await client.post(
            "/v1/invoices/inv-int-1/disputes",
            json={"amount_minor": 30_000, "reason": "Goods arrived damaged"},
            headers=customer,
        )
        assert filed.status_code == 201, filed.text

        [record] = await read_topic(namespace.kafka.bootstrap, name + topics.CASES, 1)
        headers = dict(record.headers)
        data = json.loads(record.value)
        assert headers["ce_type"] == b"DisputeOpened"
        assert record.key == CUSTOMER.encode()
        assert data["origin"] == "portal"
        assert data["dispute_id"] == filed.json()["dispute_id"]
