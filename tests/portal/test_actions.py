"""Customer actions: each stored, published through the outbox, and checked."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from starlette.types import Message

from arbor_portal.adapters.tables import notifications
from arbor_shared import topics
from tests.portal.conftest import Customer, Portal
from tests.support import header, published


def _in_days(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


async def _outbox(portal: Portal, customer: Customer) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    """What the portal published for ``customer``: (type, data and its topic)."""
    runtime = portal.app.state.runtime
    records = await published(runtime, topics.CASES, topics.CUSTOMERS)
    return [
        (header(r, "ce_type"), json.loads(r.value) | {"_topic": r.topic})
        for r in records
        if r.key == customer.customer_id.encode()
    ]


def _topic(portal: Portal, base: str) -> str:
    return f"{portal.namespace.name}.{base}"


async def test_dispute_is_stored_and_published_with_origin_portal(
    portal: Portal,
) -> None:
    alice = await portal.customer()
    invoice_id = await alice.invoice(amount=50_000, balance=30_000)

    response = await alice.post(
        f"/v1/invoices/{invoice_id}/disputes",
        {"amount_minor": 30_000, "reason": "Service was down all March"},
    )

    assert response.status_code == 201, response.text
    dispute = response.json()
    assert dispute["status"] == "open"
    assert dispute["currency"] == "EUR"
    stored = await alice.get(f"/v1/disputes/{dispute['dispute_id']}")
    assert stored.json() == dispute
    [(event_type, data)] = await _outbox(portal, alice)
    assert event_type == "DisputeOpened"
    assert data["_topic"] == _topic(portal, topics.CASES)
    assert data["origin"] == "portal"
    assert data["dispute_id"] == dispute["dispute_id"]
    assert data["amount_minor"] == 30_000


async def test_dispute_above_the_open_balance_gets_422_and_publishes_nothing(
    portal: Portal,
) -> None:
    alice = await portal.customer()
    invoice_id = await alice.invoice(amount=50_000, balance=30_000)

    response = await alice.post(
        f"/v1/invoices/{invoice_id}/disputes",
        {"amount_minor": 30_001, "reason": "too much"},
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "amount_minor"]
    assert await _outbox(portal, alice) == []


async def test_second_open_dispute_on_an_invoice_gets_409(portal: Portal) -> None:
    alice = await portal.customer()
    invoice_id = await alice.invoice()
    body = {"amount_minor": 100, "reason": "wrong"}

    first = await alice.post(f"/v1/invoices/{invoice_id}/disputes", body)
    second = await alice.post(f"/v1/invoices/{invoice_id}/disputes", body)

    assert first.status_code == 201
    assert second.status_code == 409
    assert len(await _outbox(portal, alice)) == 1


async def test_actions_on_a_settled_invoice_get_409(portal: Portal) -> None:
    alice = await portal.customer()
    invoice_id = await alice.invoice(balance=0)

    dispute = await alice.post(
        f"/v1/invoices/{invoice_id}/disputes", {"amount_minor": 1, "reason": "x"}
    )
    plan = await alice.post(
        f"/v1/invoices/{invoice_id}/payment-plans", {"installments": 2}
    )

    assert (dispute.status_code, plan.status_code) == (409, 409)


async def test_actions_wait_for_the_ledger_balance(portal: Portal) -> None:
    alice = await portal.customer()
    invoice_id = await alice.invoice(balance=None)

    response = await alice.post(
        f"/v1/invoices/{invoice_id}/promises",
        {"amount_minor": 1, "promised_date": _in_days(3)},
    )

    assert response.status_code == 409
    assert "not known yet" in response.json()["detail"]


async def test_promise_to_pay_is_stored_and_published(portal: Portal) -> None:
    alice = await portal.customer()
    invoice_id = await alice.invoice()

    response = await alice.post(
        f"/v1/invoices/{invoice_id}/promises",
        {"amount_minor": 120_000, "promised_date": _in_days(7)},
    )

    assert response.status_code == 201, response.text
    [(event_type, data)] = await _outbox(portal, alice)
    assert event_type == "PromiseToPayMade"
    assert data["promised_date"] == _in_days(7)
    assert data["origin"] == "portal"
    assert data["_topic"] == _topic(portal, topics.CASES)


async def test_promise_dated_today_or_earlier_gets_422(portal: Portal) -> None:
    alice = await portal.customer()
    invoice_id = await alice.invoice()

    for promised in (_in_days(0), _in_days(-3), _in_days(400)):
        response = await alice.post(
            f"/v1/invoices/{invoice_id}/promises",
            {"amount_minor": 100, "promised_date": promised},
        )
        assert response.status_code == 422, promised
        assert response.json()["detail"][0]["loc"] == ["body", "promised_date"]


async def test_broken_promise_event_shows_on_the_promise(portal: Portal) -> None:
    from arbor_shared.events import PromiseToPayBroken

    alice = await portal.customer()
    invoice_id = await alice.invoice()
    made = await alice.post(
        f"/v1/invoices/{invoice_id}/promises",
        {"amount_minor": 100, "promised_date": _in_days(2)},
    )
    promise_id = made.json()["promise_id"]

    await portal.apply(
        PromiseToPayBroken(
            customer_id=alice.customer_id,
            promise_id=promise_id,
            invoice_id=invoice_id,
            promised_date=date.fromisoformat(_in_days(2)),
            broken_at=datetime.now(UTC),
        )
    )

    assert (await alice.get(f"/v1/promises/{promise_id}")).json()["status"] == "broken"


async def test_payment_plan_request_is_stored_and_published(portal: Portal) -> None:
    alice = await portal.customer()
    invoice_id = await alice.invoice()

    response = await alice.post(
        f"/v1/invoices/{invoice_id}/payment-plans",
        {"installments": 4, "note": "Quarterly would help"},
    )

    assert response.status_code == 201
    [(event_type, data)] = await _outbox(portal, alice)
    assert (event_type, data["installments"]) == ("PaymentPlanRequested", 4)
    detail = (await alice.get(f"/v1/invoices/{invoice_id}")).json()
    assert [p["installments"] for p in detail["payment_plans"]] == [4]


async def test_changing_the_email_notifies_old_and_new_address(
    portal: Portal,
) -> None:
    alice = await portal.customer()
    await alice.patch("/v1/billing-details", {"email": "old@example.com"})

    response = await alice.patch(
        "/v1/billing-details",
        {"email": "new@example.com", "time_zone": "Pacific/Auckland"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["email"] == "new@example.com"
    async with portal.app.state.runtime.sessions() as session:
        sent = (
            await session.execute(
                sa.select(notifications.c.recipient, notifications.c.role)
                .where(notifications.c.customer_id == alice.customer_id)
                .order_by(notifications.c.created_at, notifications.c.role)
            )
        ).all()
    # The first address was announced when it was set; the change warns both.
    assert sorted(tuple(r) for r in sent) == [
        ("new@example.com", "new_address"),
        ("old@example.com", "new_address"),
        ("old@example.com", "old_address"),
    ]
    events = await _outbox(portal, alice)
    assert [e for e, _ in events] == ["BillingDetailsChanged"] * 2
    last = events[-1][1]
    assert last["changed_fields"] == ["email", "time_zone"]
    assert last["_topic"] == _topic(portal, topics.CUSTOMERS)


async def test_unchanged_details_publish_nothing(portal: Portal) -> None:
    alice = await portal.customer()
    await alice.patch("/v1/billing-details", {"language": "de"})

    await alice.patch("/v1/billing-details", {"language": "de"})

    assert len(await _outbox(portal, alice)) == 1


async def test_payment_method_is_kept_as_a_provider_token_only(
    portal: Portal,
) -> None:
    alice = await portal.customer()
    method = {
        "provider": "stripe",
        "token": "pm_1Nv2xYZ",
        "brand": "visa",
        "last4": "4242",
        "exp_month": 12,
        "exp_year": 2030,
    }

    accepted = await alice.patch("/v1/billing-details", {"payment_method": method})
    with_number = await alice.patch(
        "/v1/billing-details",
        {"payment_method": method | {"number": "4242424242424242"}},
    )

    assert accepted.json()["payment_method"] == method
    assert with_number.status_code == 422
    assert with_number.json()["detail"][0]["loc"] == [
        "body",
        "payment_method",
        "number",
    ]


async def test_invalid_time_zone_gets_422(portal: Portal) -> None:
    alice = await portal.customer()

    response = await alice.patch("/v1/billing-details", {"time_zone": "Mars/Olympus"})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "time_zone"]


async def test_finance_replies_to_a_customer_thread(portal: Portal) -> None:
    alice = await portal.customer()
    invoice_id = await alice.invoice()
    ops = portal.auth("ops-7", roles=("operator",))
    started = await alice.post(
        "/v1/threads",
        {"subject": "PO number", "body": "Please add PO 77", "invoice_id": invoice_id},
    )
    thread_id = started.json()["thread_id"]

    waiting = await portal.client.get(
        "/v1/ops/threads", params={"customer_id": alice.customer_id}, headers=ops
    )
    reply = await portal.client.post(
        f"/v1/ops/threads/{thread_id}/replies", json={"body": "Done."}, headers=ops
    )
    thread = (await alice.get(f"/v1/threads/{thread_id}")).json()

    assert [t["thread_id"] for t in waiting.json()] == [thread_id]
    assert reply.status_code == 201
    assert [(m["author"], m["body"]) for m in thread["messages"]] == [
        ("customer", "Please add PO 77"),
        ("finance", "Done."),
    ]
    assert thread["status"] == "awaiting_customer"
    assert thread["invoice_id"] == invoice_id


async def test_thread_about_someone_elses_invoice_gets_404(portal: Portal) -> None:
    alice = await portal.customer()
    bob = await portal.customer()
    invoice_id = await alice.invoice()

    response = await bob.post(
        "/v1/threads", {"subject": "s", "body": "b", "invoice_id": invoice_id}
    )

    assert response.status_code == 404


async def test_a_retry_with_the_same_idempotency_key_replays_the_answer(
    portal: Portal,
) -> None:
    alice = await portal.customer()
    invoice_id = await alice.invoice()
    path = f"/v1/invoices/{invoice_id}/disputes"
    body = {"amount_minor": 700, "reason": "double charge"}
    headers = alice.headers | {"Idempotency-Key": "retry-1"}

    first = await portal.client.post(path, json=body, headers=headers)
    again = await portal.client.post(path, json=body, headers=headers)
    changed = await portal.client.post(
        path, json=body | {"amount_minor": 701}, headers=headers
    )

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert changed.status_code == 422
    assert changed.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert [e for e, _ in await _outbox(portal, alice)] == ["DisputeOpened"]


async def test_idempotency_keys_belong_to_one_customer(portal: Portal) -> None:
    alice = await portal.customer()
    bob = await portal.customer()
    body = {"subject": "s", "body": "b"}

    mine = await portal.client.post(
        "/v1/threads", json=body, headers=alice.headers | {"Idempotency-Key": "k"}
    )
    theirs = await portal.client.post(
        "/v1/threads", json=body, headers=bob.headers | {"Idempotency-Key": "k"}
    )

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["thread_id"] != theirs.json()["thread_id"]


async def test_action_is_committed_before_its_answer_is_sent(portal: Portal) -> None:
    alice = await portal.customer()
    invoice_id = await alice.invoice(amount=50_000, balance=30_000)
    body = json.dumps({"amount_minor": 10_000, "reason": "Wrong rate"}).encode()
    seen_when_answered: list[list[tuple[str, dict]]] = []  # type: ignore[type-arg]

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        # A client may act on the answer at once, so the effect must be durable
        # and visible to other connections by the time the status line leaves.
        if message["type"] == "http.response.start":
            seen_when_answered.append(await _outbox(portal, alice))

    path = f"/v1/invoices/{invoice_id}/disputes"
    token = alice.headers["Authorization"].encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"portal.test"),
            (b"authorization", token),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("portal.test", 80),
    }
    await portal.app(scope, receive, send)

    [outbox] = seen_when_answered
    assert [event_type for event_type, _ in outbox] == ["DisputeOpened"]
