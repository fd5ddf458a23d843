"""The canonical event API against the real broker and database."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import FastAPI

from arbor_shared import topics
from tests.conftest import Namespace
from tests.ingest.conftest import SignedClient
from tests.support import header, published, read_topic


def invoice(
    invoice_id: str = "inv-1", customer: str = "cus-1", amount: int = 10_000
) -> dict[str, Any]:
    return {
        "id": f"ev-{invoice_id}",
        "type": "InvoiceIssued",
        "data": {
            "customer_id": customer,
            "invoice_id": invoice_id,
            "currency": "EUR",
            "amount_minor": amount,
            "issue_date": "2024-03-01",
            "due_date": "2024-03-31",
            "issued_at": "2024-03-01T09:00:00+01:00",
        },
    }


def payment(
    payment_id: str = "pay-1",
    amount: int = 10_000,
    allocations: list[tuple[str, int]] = (),  # type: ignore[assignment]
    customer: str = "cus-1",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": f"ev-{payment_id}",
        "type": "PaymentReceived",
        "data": {
            "customer_id": customer,
            "payment_id": payment_id,
            "currency": "EUR",
            "amount_minor": amount,
            "received_at": "2024-03-20T10:00:00+01:00",
            "allocations": [
                {"invoice_id": i, "amount_minor": a} for i, a in allocations
            ],
            **extra,
        },
    }


def topic(namespace: Namespace, base: str) -> str:
    return f"{namespace.name}.{base}"


async def test_single_event_is_accepted_and_published_once(
    client: SignedClient, namespace: Namespace, app: FastAPI
) -> None:
    response = await client.post("/v1/events", invoice())

    assert response.status_code == 202, response.text
    assert response.json() == {"id": "ev-inv-1", "status": "accepted"}
    (record,) = await read_topic(
        namespace.kafka.bootstrap, topic(namespace, topics.INVOICES), 1
    )
    assert dict(record.headers)["ce_id"] == b"ev-inv-1"
    assert orjson.loads(record.value)["amount_minor"] == 10_000


async def published_ids(app: FastAPI, base_topic: str) -> list[str]:
    """Event ids published on ``base_topic``, duplicates included."""
    records = await published(app.state.runtime, base_topic)
    return [header(record, "ce_id") for record in records]


async def test_resubmitted_event_is_a_duplicate_and_published_once(
    client: SignedClient, namespace: Namespace, app: FastAPI
) -> None:
    first = await client.post("/v1/events", invoice())
    again = await client.post("/v1/events", invoice())

    assert first.json()["status"] == "accepted"
    assert again.status_code == 202
    assert again.json() == {"id": "ev-inv-1", "status": "duplicate"}
    assert await published_ids(app, topics.INVOICES) == ["ev-inv-1"]


async def test_event_id_reused_with_other_data_is_rejected_naming_id(
    client: SignedClient,
) -> None:
    await client.post("/v1/events", invoice(amount=10_000))
    response = await client.post("/v1/events", invoice(amount=99))

    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["field"] == "id"
    assert "different data" in problem["msg"]


async def test_invalid_event_is_422_naming_field_and_reason(
    client: SignedClient,
) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"amount_minor": "100"}, "data.amount_minor", "integer"),
        ({"amount_minor": True}, "data.amount_minor", "integer"),
        ({"amount_minor": 256.0}, "data.amount_minor", "integer"),
        ({"amount_minor": -5}, "data.amount_minor", "greater than or equal"),
        ({"amount_minor": 10**16}, "data.amount_minor", "must not exceed"),
        ({"currency": "XYZ"}, "data.currency", "ISO 4217"),
        ({"due_date": "2024-02-01"}, "data.due_date", "before issue_date"),
        ({"colour": "red"}, "data.colour", "Extra inputs"),
    ]
    for change, field, reason in cases:
        event = invoice()
        event["data"] |= change
        response = await client.post("/v1/events", event)

        assert response.status_code == 422, (change, response.text)
        fields = {p["field"]: p["msg"] for p in response.json()["detail"]}
        assert reason in fields[field], (change, fields)


async def test_allocations_exceeding_payment_are_rejected_naming_field(
    client: SignedClient,
) -> None:
    response = await client.post(
        "/v1/events", payment(amount=100, allocations=[("inv-1", 60), ("inv-2", 60)])
    )

    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["field"] == "data.allocations"
    assert "exceeds the payment" in problem["msg"]


async def test_payment_in_other_currency_than_its_invoice_is_rejected(
    client: SignedClient, app: FastAPI
) -> None:
    await client.post("/v1/events", invoice("inv-1"))
    usd = payment(allocations=[("inv-1", 10_000)])
    usd["data"]["currency"] = "USD"

    response = await client.post("/v1/events", usd)

    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["field"] == "data.allocations[0].invoice_id"
    assert "is in EUR, the money in USD" in problem["msg"]
    assert await published_ids(app, topics.PAYMENTS) == []


async def test_batch_answers_per_item_and_rejected_items_block_nothing(
    client: SignedClient, namespace: Namespace, app: FastAPI
) -> None:
    bad_amount = invoice("inv-bad")
    bad_amount["data"]["amount_minor"] = 256.0
    unknown_type = {"id": "ev-x", "type": "InvoiceSettled", "data": {}}
    wrong_currency = payment("pay-usd", allocations=[("inv-1", 100)])
    wrong_currency["data"]["currency"] = "USD"
    events = [
        invoice("inv-1"),
        bad_amount,
        payment("pay-1", 4_000, [("inv-1", 4_000)]),
        unknown_type,
        invoice("inv-1"),
        wrong_currency,
        "not an object",
    ]

    response = await client.post("/v1/events:batch", {"events": events})

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (2, 1, 4)
    results = body["results"]
    assert [r["status"] for r in results] == [
        "accepted",
        "rejected",
        "accepted",
        "rejected",
        "duplicate",
        "rejected",
        "rejected",
    ]
    assert results[1]["errors"][0]["field"] == "events[1].data.amount_minor"
    assert results[3]["errors"][0]["field"] == "events[3].type"
    assert results[5]["errors"][0]["field"] == (
        "events[5].data.allocations[0].invoice_id"
    )
    assert results[6] == {
        "index": 6,
        "id": None,
        "status": "rejected",
        "errors": [{"field": "events[6]", "reason": results[6]["errors"][0]["reason"]}],
    }
    await _assert_published_once(app, ["ev-inv-1"], ["ev-pay-1"])


async def _assert_published_once(
    app: FastAPI, invoices: list[str], payments: list[str]
) -> None:
    assert sorted(await published_ids(app, topics.INVOICES)) == sorted(invoices)
    assert sorted(await published_ids(app, topics.PAYMENTS)) == sorted(payments)


async def test_batch_moves_the_ledger_and_publishes_its_facts(
    client: SignedClient, namespace: Namespace
) -> None:
    early = payment("pay-1", 10_000, [("inv-1", 10_000)])

    response = await client.post("/v1/events:batch", {"events": [early, invoice()]})

    assert response.json()["accepted"] == 2
    ledger = await read_topic(
        namespace.kafka.bootstrap, topic(namespace, topics.LEDGER), 4
    )
    kinds = [dict(r.headers)["ce_type"].decode() for r in ledger]
    assert kinds == [
        "CustomerBalanceChanged",
        "InvoiceBalanceChanged",
        "InvoiceSettled",
        "CustomerBalanceChanged",
    ]
    settled = orjson.loads(ledger[2].value)
    assert settled["settled_at"] == "2024-03-20T09:00:00Z"
    assert dict(ledger[2].headers)["ce_causationid"] == b"ev-inv-1"


async def test_batch_over_the_limit_is_refused_whole(client: SignedClient) -> None:
    events = [invoice(f"inv-{n}") for n in range(5001)]

    response = await client.post("/v1/events:batch", {"events": events})

    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "events"


async def test_same_provider_payment_under_two_event_ids_is_booked_once(
    client: SignedClient, app: FastAPI
) -> None:
    first = payment("pay-1", provider_payment_id="ch_1")
    replayed = payment("pay-1", provider_payment_id="ch_1") | {"id": "ev-webhook-2"}
    other = payment("pay-2", provider_payment_id="ch_1") | {"id": "ev-webhook-3"}

    answers = [await client.post("/v1/events", e) for e in (first, replayed, other)]

    assert [a.status_code for a in answers] == [202, 202, 422]
    assert answers[1].json()["status"] == "duplicate"
    assert answers[2].json()["detail"][0]["field"] == "data.provider_payment_id"
    assert await published_ids(app, topics.PAYMENTS) == ["ev-pay-1"]


async def test_invoice_issued_again_with_other_amount_is_rejected(
    client: SignedClient,
) -> None:
    await client.post("/v1/events", invoice("inv-1"))
    changed = invoice("inv-1", amount=1) | {"id": "ev-other"}

    response = await client.post("/v1/events", changed)

    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "data.invoice_id"


async def test_idempotency_key_replays_the_first_answer_after_a_lost_response(
    client: SignedClient, app: FastAPI
) -> None:
    # A crash between commit and answer looks to the client like a lost response;
    # its retry with the same key must get the answer and add nothing.
    event = invoice() | {"id": "ev-1"}
    headers = {"Idempotency-Key": "retry-1"}

    first = await client.post("/v1/events", event, headers=headers)
    retry = await client.post("/v1/events", event, headers=headers)

    assert first.status_code == retry.status_code == 202
    assert retry.json() == first.json() == {"id": "ev-1", "status": "accepted"}
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert await published_ids(app, topics.INVOICES) == ["ev-1"]


async def test_idempotency_key_without_event_id_still_stores_once(
    client: SignedClient, app: FastAPI
) -> None:
    event = invoice()
    del event["id"]
    headers = {"Idempotency-Key": "no-id"}

    first = await client.post("/v1/events:batch", {"events": [event]}, headers=headers)
    retry = await client.post("/v1/events:batch", {"events": [event]}, headers=headers)

    assert retry.json() == first.json()
    assert len(await published_ids(app, topics.INVOICES)) == 1


async def test_idempotency_key_with_another_body_is_422(client: SignedClient) -> None:
    headers = {"Idempotency-Key": "k-1"}
    await client.post("/v1/events", invoice("inv-1"), headers=headers)

    response = await client.post("/v1/events", invoice("inv-2"), headers=headers)

    assert response.status_code == 422
    assert "different request body" in response.json()["detail"]


async def test_concurrent_retries_with_one_key_store_the_event_once(
    client: SignedClient, app: FastAPI
) -> None:
    headers = {"Idempotency-Key": "race"}
    event = invoice()

    answers = await asyncio.gather(
        *(client.post("/v1/events", event, headers=headers) for _ in range(4))
    )

    assert {a.status_code for a in answers} == {202}
    assert {a.json()["id"] for a in answers} == {"ev-inv-1"}
    assert await published_ids(app, topics.INVOICES) == ["ev-inv-1"]


async def test_full_batch_of_five_thousand_events_is_accepted_and_published(
    client: SignedClient, namespace: Namespace, app: FastAPI
) -> None:
    events: list[dict[str, Any]] = []
    for n in range(2_500):
        customer = f"cus-{n % 400}"
        events.append(invoice(f"inv-{n}", customer, 1_000 + n))
        events.append(payment(f"pay-{n}", 1_000, [(f"inv-{n}", 1_000)], customer))

    response = await client.post("/v1/events:batch", {"events": events})

    assert response.status_code == 200
    assert response.json()["accepted"] == 5_000
    assert len(set(await published_ids(app, topics.PAYMENTS))) == 2_500
    records = await read_topic(
        namespace.kafka.bootstrap, topic(namespace, topics.INVOICES), 2_500
    )
    assert len({dict(r.headers)["ce_id"] for r in records}) == 2_500


async def test_ledger_state_carries_over_between_requests(
    client: SignedClient, namespace: Namespace
) -> None:
    customer = {
        "id": "ev-cus",
        "type": "CustomerCreated",
        "data": {
            "customer_id": "cus-1",
            "name": "Kiwi Ltd",
            "country": "NZ",
            "time_zone": "Pacific/Auckland",
            "currency": "EUR",
            "started_on": "2024-01-01",
        },
    }
    early = payment("pay-1", 10_000, [("inv-1", 10_000)])
    early["data"]["received_at"] = "2024-03-20T20:00:00+00:00"

    for event in (customer, early, invoice()):
        assert (await client.post("/v1/events", event)).status_code == 202

    ledger = await read_topic(
        namespace.kafka.bootstrap, topic(namespace, topics.LEDGER), 4
    )
    (settled,) = [
        orjson.loads(r.value)
        for r in ledger
        if dict(r.headers)["ce_type"] == b"InvoiceSettled"
    ]
    # Parked in one request, applied in the next; dated in the customer's zone.
    assert settled["settled_at"] == "2024-03-20T20:00:00Z"
    assert settled["settled_date"] == "2024-03-21"


async def test_event_naming_another_customers_invoice_is_rejected(
    client: SignedClient, app: FastAPI
) -> None:
    await client.post("/v1/events", invoice("inv-1", customer="cus-a"))
    intruder = payment("pay-1", 100, [("inv-1", 100)], customer="cus-b")

    response = await client.post("/v1/events", intruder)

    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["field"] == "data.allocations[0].invoice_id"
    assert problem["msg"] == "invoice inv-1 belongs to another customer"
    assert await published_ids(app, topics.PAYMENTS) == []


def refund_of_an_unknown_payment() -> dict[str, Any]:
    """A refund the ledger must refuse: it names a payment never booked."""
    return {
        "id": "ev-ref-1",
        "type": "PaymentRefunded",
        "data": {
            "customer_id": "cus-1",
            "refund_id": "ref-1",
            "payment_id": "pay-never-seen",
            "currency": "EUR",
            "amount_minor": 100,
            "refunded_at": "2024-03-25T10:00:00+00:00",
        },
    }


async def test_repeat_of_a_refused_event_in_one_batch_is_refused_too(
    client: SignedClient,
) -> None:
    refund = refund_of_an_unknown_payment()

    response = await client.post("/v1/events:batch", {"events": [refund, refund]})

    results = response.json()["results"]
    assert [r["status"] for r in results] == ["rejected", "rejected"]
    assert results[1]["errors"] == [
        {
            "field": "events[1].data.payment_id",
            "reason": results[0]["errors"][0]["reason"],
        }
    ]
