"""POST /v1/webhooks/stripe against the real database and broker."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from pydantic import SecretStr

from arbor_ingest.adapters.stripe_tables import stripe_events
from arbor_ingest.bootstrap import MIGRATIONS, create_app
from arbor_ingest.config import IngestSettings
from arbor_shared import topics
from arbor_shared.runtime import ServiceRuntime
from tests.conftest import Namespace
from tests.ingest.conftest import ingest_settings
from tests.ingest.fixtures.data import (
    CUSTOMER,
    WEBHOOK_SECRET,
    envelope,
    object_for,
    signed,
    stripe_event_types,
    stripe_object,
)
from tests.support import header, migrate, published, read_topic, running

PATH = "/v1/webhooks/stripe"


@pytest.fixture
def settings(namespace: Namespace) -> IngestSettings:
    return ingest_settings(namespace, stripe_webhook_secret=SecretStr(WEBHOOK_SECRET))


@pytest.fixture
async def stripe(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
        yield http


async def deliver(
    http: httpx.AsyncClient,
    event: dict[str, Any],
    *,
    timestamp: int | None = None,
    secret: str = WEBHOOK_SECRET,
) -> httpx.Response:
    body = orjson.dumps(event)
    header = signed(body, timestamp or int(time.time()), secret)
    return await http.post(
        PATH,
        content=body,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


def runtime(app: FastAPI) -> ServiceRuntime:
    value: ServiceRuntime = app.state.runtime
    return value


async def recorded(app: FastAPI) -> dict[str, tuple[str, str | None]]:
    async with runtime(app).sessions() as session:
        rows = await session.execute(
            sa.select(
                stripe_events.c.event_id,
                stripe_events.c.outcome,
                stripe_events.c.reason,
            )
        )
        return {r.event_id: (r.outcome, r.reason) for r in rows}


async def staged(app: FastAPI, base_topic: str) -> list[str]:
    """Event types published on ``base_topic``, each customer's in order."""
    records = await published(runtime(app), base_topic)
    return [header(record, "ce_type") for record in records]


async def test_signed_customer_created_is_accepted_and_published(
    app: FastAPI, stripe: httpx.AsyncClient, namespace: Namespace
) -> None:
    event = envelope(
        "customer.created", stripe_object("customer"), event_id="evt_cus_1"
    )

    response = await deliver(stripe, event)

    assert response.status_code == 200
    assert response.json() == {
        "status": "accepted",
        "reason": None,
        "event_ids": ["evt_cus_1"],
    }
    (record,) = await read_topic(
        namespace.kafka.bootstrap, f"{namespace.name}.{topics.CUSTOMERS}", 1
    )
    headers = dict(record.headers)
    assert (headers["ce_id"], headers["ce_type"]) == (b"evt_cus_1", b"CustomerCreated")
    assert orjson.loads(record.value)["customer_id"] == CUSTOMER


async def test_wrong_signature_is_refused_before_anything_is_read(
    app: FastAPI, stripe: httpx.AsyncClient
) -> None:
    event = envelope("customer.created", stripe_object("customer"), event_id="evt_bad")

    response = await deliver(stripe, event, secret="whsec_someone_else")

    assert response.status_code == 400
    assert "no v1 signature matches" in response.json()["detail"]
    assert await recorded(app) == {}
    assert await staged(app, topics.CUSTOMERS) == []


async def test_stale_timestamp_is_refused(
    app: FastAPI, stripe: httpx.AsyncClient
) -> None:
    event = envelope("customer.created", stripe_object("customer"), event_id="evt_old")

    response = await deliver(stripe, event, timestamp=int(time.time()) - 301)

    assert response.status_code == 400
    assert "tolerance is 300 s" in response.json()["detail"]
    assert await recorded(app) == {}


async def test_unknown_type_is_acknowledged_and_recorded_with_its_reason(
    app: FastAPI, stripe: httpx.AsyncClient
) -> None:
    event = envelope(
        "issuing_card.created",
        {"id": "ic_1", "object": "issuing.card"},
        event_id="evt_unknown",
    )

    response = await deliver(stripe, event)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ignored"
    assert "no canonical counterpart" in body["reason"]
    assert await recorded(app) == {"evt_unknown": ("ignored", body["reason"])}
    metrics = (await stripe.get("/metrics")).text
    assert (
        'arbor_ingest_stripe_events_total{event_type="other",outcome="ignored"} 1.0'
        in metrics
    )


async def test_redelivery_of_an_event_is_answered_as_a_duplicate(
    app: FastAPI, stripe: httpx.AsyncClient
) -> None:
    event = envelope(
        "invoice.finalized", stripe_object("invoice"), event_id="evt_inv_1"
    )

    first = await deliver(stripe, event)
    again = await deliver(stripe, event)

    assert (first.json()["status"], again.json()["status"]) == ("accepted", "duplicate")
    assert await staged(app, topics.INVOICES) == ["InvoiceIssued"]


async def test_one_payment_reported_by_two_stripe_events_is_booked_once(
    app: FastAPI, stripe: httpx.AsyncClient
) -> None:
    await deliver(
        stripe,
        envelope("invoice.finalized", stripe_object("invoice"), event_id="evt_a"),
    )
    intent = stripe_object(
        "payment_intent",
        customer=CUSTOMER,
        amount_received=1000,
        invoice=stripe_object("invoice")["id"],
    )
    invoice = stripe_object("invoice", amount_paid=1000, payment_intent=intent["id"])

    booked = await deliver(
        stripe, envelope("payment_intent.succeeded", intent, event_id="evt_b")
    )
    repeated = await deliver(
        stripe, envelope("invoice.paid", invoice, event_id="evt_c")
    )

    assert booked.json()["status"] == "accepted"
    assert repeated.json()["status"] == "ignored"
    assert "already booked" in repeated.json()["reason"]
    assert await staged(app, topics.PAYMENTS) == ["PaymentReceived"]


async def test_a_voided_credit_note_makes_its_invoice_owed_again(
    app: FastAPI, stripe: httpx.AsyncClient
) -> None:
    invoice = stripe_object("invoice")
    note = stripe_object("credit_note", invoice=invoice["id"], total=400, amount=400)
    await deliver(stripe, envelope("invoice.finalized", invoice, event_id="evt_inv"))
    await deliver(stripe, envelope("credit_note.created", note, event_id="evt_cn"))

    answer = await deliver(
        stripe, envelope("credit_note.voided", note, event_id="evt_cn_void")
    )

    assert answer.json()["status"] == "accepted"
    assert await staged(app, topics.PAYMENTS) == [
        "CreditNoteIssued",
        "CreditNoteVoided",
    ]
    balances = await staged_facts(app, "InvoiceBalanceChanged")
    assert [(b["credited_minor"], b["balance_minor"]) for b in balances] == [
        (0, 1000),
        (400, 600),
        (0, 1000),
    ]


async def staged_facts(app: FastAPI, event_type: str) -> list[dict[str, Any]]:
    """Payloads of the ledger facts of ``event_type`` published, in key order."""
    records = await published(runtime(app), topics.LEDGER)
    return [
        orjson.loads(record.value)
        for record in records
        if header(record, "ce_type") == event_type
    ]


async def test_every_listed_stripe_type_gets_a_2xx_answer_never_a_5xx(
    app: FastAPI, stripe: httpx.AsyncClient
) -> None:
    answers = {}
    for n, event_type in enumerate(stripe_event_types()):
        event = envelope(event_type, object_for(event_type), event_id=f"evt_all_{n}")
        response = await deliver(stripe, event)
        answers[event_type] = (response.status_code, response.json()["status"])

    assert {code for code, _ in answers.values()} == {200}
    assert all(
        s in ("accepted", "duplicate", "ignored") for _, s in answers.values()
    ), answers
    assert len(await recorded(app)) == len(answers)


async def test_without_a_webhook_secret_the_endpoint_is_unavailable(
    namespace: Namespace,
) -> None:
    settings = ingest_settings(namespace)
    await migrate(MIGRATIONS, settings)
    application = create_app(settings)
    event = envelope("customer.created", stripe_object("customer"), event_id="evt_x")
    async with running(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://i") as http:
            response = await deliver(http, event)

    assert response.status_code == 503
