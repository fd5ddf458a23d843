"""Object-level authorization: customer B using customer A's ids gets 404 (P8)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from arbor_shared.events import Allocation, PaymentReceived
from tests.portal.conftest import NOW, Customer, Portal

MISSING = "does-not-exist-0"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _future(days: int = 10) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


async def _world_of(customer: Customer) -> dict[str, str]:
    """One object of every kind on ``customer``'s account."""
    invoice_id = await customer.invoice()
    other_invoice = await customer.invoice(issue_date=date(2024, 2, 1))
    payment_id = f"pay-{customer.customer_id}"
    await customer.portal.apply(
        PaymentReceived(
            customer_id=customer.customer_id,
            payment_id=payment_id,
            currency="EUR",
            amount_minor=10_000,
            received_at=NOW,
            allocations=(Allocation(invoice_id=invoice_id, amount_minor=10_000),),
        )
    )
    dispute = await customer.post(
        f"/v1/invoices/{invoice_id}/disputes",
        {"amount_minor": 500, "reason": "wrong quantity"},
    )
    promise = await customer.post(
        f"/v1/invoices/{invoice_id}/promises",
        {"amount_minor": 500, "promised_date": _future()},
    )
    plan = await customer.post(
        f"/v1/invoices/{invoice_id}/payment-plans", {"installments": 3}
    )
    thread = await customer.post(
        "/v1/threads", {"subject": "Hello", "body": "A question"}
    )
    for response in (dispute, promise, plan, thread):
        assert response.status_code == 201, response.text
    return {
        "invoice_id": invoice_id,
        "fresh_invoice_id": other_invoice,
        "payment_id": payment_id,
        "dispute_id": dispute.json()["dispute_id"],
        "promise_id": promise.json()["promise_id"],
        "request_id": plan.json()["request_id"],
        "thread_id": thread.json()["thread_id"],
    }


# Every customer route with an id in its path, with a body that would succeed for the
# owner. POSTs use the second invoice so the owner's request is not a duplicate case.
ROUTES_WITH_IDS: list[tuple[str, str, dict[str, object] | None]] = [
    ("GET", "/v1/invoices/{invoice_id}", None),
    ("GET", "/v1/payments/{payment_id}", None),
    ("GET", "/v1/disputes/{dispute_id}", None),
    ("GET", "/v1/promises/{promise_id}", None),
    ("GET", "/v1/payment-plans/{request_id}", None),
    ("GET", "/v1/threads/{thread_id}", None),
    (
        "POST",
        "/v1/invoices/{fresh_invoice_id}/disputes",
        {"amount_minor": 100, "reason": "not ordered"},
    ),
    (
        "POST",
        "/v1/invoices/{fresh_invoice_id}/promises",
        {"amount_minor": 100, "promised_date": "FUTURE"},
    ),
    ("POST", "/v1/invoices/{fresh_invoice_id}/payment-plans", {"installments": 2}),
    ("POST", "/v1/threads/{thread_id}/messages", {"body": "still waiting"}),
]


def _template(path: str) -> str:
    return path.replace("{fresh_invoice_id}", "{invoice_id}")


def _body(body: dict[str, object] | None) -> dict[str, object] | None:
    if body is None:
        return None
    return {k: _future() if v == "FUTURE" else v for k, v in body.items()}


async def test_every_customer_route_with_an_id_is_covered(portal: Portal) -> None:
    declared = {
        (method.upper(), path)
        for path, operations in portal.app.openapi()["paths"].items()
        if "{" in path and not path.startswith("/v1/ops")
        for method in operations
    }

    assert declared == {(m, _template(p)) for m, p, _ in ROUTES_WITH_IDS}


async def test_another_customers_ids_answer_404_like_missing_ones(
    portal: Portal,
) -> None:
    alice = await portal.customer("alice")
    bob = await portal.customer("bob")
    await _world_of(bob)
    ids = await _world_of(alice)

    for method, template, body in ROUTES_WITH_IDS:
        path = template.format(**ids)
        missing = template.format(**dict.fromkeys(ids, MISSING))
        as_bob = await portal.client.request(
            method, path, json=_body(body), headers=bob.headers
        )
        as_bob_missing = await portal.client.request(
            method, missing, json=_body(body), headers=bob.headers
        )
        as_alice = await portal.client.request(
            method, path, json=_body(body), headers=alice.headers
        )

        assert as_bob.status_code == 404, (method, template, as_bob.text)
        used = ids[_PLACEHOLDER.search(template).group(1)]  # type: ignore[union-attr]
        assert as_bob.json() == {
            "detail": as_bob_missing.json()["detail"].replace(MISSING, used)
        }
        assert as_alice.status_code in (200, 201), (method, template, as_alice.text)


async def test_lists_show_only_the_callers_objects(portal: Portal) -> None:
    alice = await portal.customer("alice")
    bob = await portal.customer("bob")
    ids = await _world_of(alice)

    invoices = (await bob.get("/v1/invoices")).json()
    payments = (await bob.get("/v1/payments")).json()
    threads = (await bob.get("/v1/threads")).json()
    account = (await bob.get("/v1/account")).json()

    assert invoices == {"items": [], "next_cursor": None}
    assert payments == {"items": [], "next_cursor": None}
    assert threads == []
    assert account["balances"] == []
    alice_invoices = (await alice.get("/v1/invoices")).json()["items"]
    assert ids["invoice_id"] in {i["invoice_id"] for i in alice_invoices}


async def test_events_cannot_move_an_invoice_to_another_customer(
    portal: Portal,
) -> None:
    alice = await portal.customer("alice")
    bob = await portal.customer("bob")
    invoice_id = await alice.invoice()

    await bob.invoice(invoice_id, balance=1)

    assert (await bob.get(f"/v1/invoices/{invoice_id}")).status_code == 404
    mine = await alice.get(f"/v1/invoices/{invoice_id}")
    assert mine.json()["balance_minor"] == 120_000
