"""Bad input: forbidden fields, card numbers, page and body limits, rate limits."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from arbor_portal.domain.ratelimit import RateLimiter
from tests.portal.conftest import Customer, Portal

CARD_NUMBERS = ["4111111111111111", "4111 1111 1111 1111", "5500-0000-0000-0004"]


def _future() -> str:
    return (datetime.now(UTC).date() + timedelta(days=5)).isoformat()


@pytest.mark.parametrize("field", ["customer_id", "cohort", "credit_limit"])
async def test_forbidden_fields_in_billing_update_get_422_naming_them(
    portal: Portal, field: str
) -> None:
    alice = await portal.customer()

    response = await alice.patch(
        "/v1/billing-details", {"language": "fr", field: "anything"}
    )

    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", field]]
    details = (await alice.get("/v1/billing-details")).json()
    assert details["language"] is None


async def test_customer_id_in_a_dispute_body_gets_422(portal: Portal) -> None:
    alice = await portal.customer()
    invoice_id = await alice.invoice()

    response = await alice.post(
        f"/v1/invoices/{invoice_id}/disputes",
        {"amount_minor": 5, "reason": "x", "customer_id": "cus-other"},
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "customer_id"]


async def test_amounts_must_be_real_integers(portal: Portal) -> None:
    alice = await portal.customer()
    invoice_id = await alice.invoice()

    for amount in ("100", 100.0, True):
        response = await alice.post(
            f"/v1/invoices/{invoice_id}/disputes",
            {"amount_minor": amount, "reason": "x"},
        )
        assert response.status_code == 422, amount


# Every free-text field of every customer request: (method, path, body, field path).
def _text_fields(invoice_id: str, thread_id: str) -> list[tuple[str, str, Any, str]]:
    address = {"line1": "1 Main St", "city": "Paris", "postal_code": "75001"}
    address |= {"country": "FR"}
    token: dict[str, Any] = {"provider": "stripe", "token": "pm_1", "brand": "visa"}
    token |= {"last4": "4242", "exp_month": 1, "exp_year": 2031}
    dispute = f"/v1/invoices/{invoice_id}/disputes"
    return [
        ("POST", dispute, {"amount_minor": 1, "reason": "T"}, "reason"),
        (
            "POST",
            f"/v1/invoices/{invoice_id}/payment-plans",
            {"installments": 2, "note": "T"},
            "note",
        ),
        ("POST", "/v1/threads", {"subject": "T", "body": "b"}, "subject"),
        ("POST", "/v1/threads", {"subject": "s", "body": "T"}, "body"),
        ("POST", f"/v1/threads/{thread_id}/messages", {"body": "T"}, "body"),
        ("PATCH", "/v1/billing-details", {"email": "T"}, "email"),
        ("PATCH", "/v1/billing-details", {"time_zone": "T"}, "time_zone"),
        *[
            (
                "PATCH",
                "/v1/billing-details",
                {"postal_address": address | {name: "T"}},
                f"postal_address.{name}",
            )
            for name in ("line1", "line2", "city", "postal_code", "region")
        ],
        (
            "PATCH",
            "/v1/billing-details",
            {"payment_method": token | {"token": "T"}},
            "payment_method.token",
        ),
    ]


def _fill(body: Any, card: str) -> Any:
    if isinstance(body, dict):
        return {k: _fill(v, card) for k, v in body.items()}
    if body == "T":
        return card
    return body


async def _thread(alice: Customer) -> str:
    response = await alice.post("/v1/threads", {"subject": "s", "body": "b"})
    thread_id: str = response.json()["thread_id"]
    return thread_id


async def test_every_text_field_is_listed_for_the_card_check(portal: Portal) -> None:
    schemas = portal.app.openapi()["components"]["schemas"]
    text_fields = {
        f"{name}.{field}"
        for name, schema in schemas.items()
        if name.endswith(("Create", "Update")) or name in ("PostalAddress",)
        for field, spec in schema.get("properties", {}).items()
        if _is_free_text(spec)
    }

    assert text_fields == {
        "DisputeCreate.reason",
        "PaymentPlanCreate.note",
        "ThreadCreate.subject",
        "ThreadCreate.body",
        "MessageCreate.body",
        "BillingDetailsUpdate.email",
        "BillingDetailsUpdate.time_zone",
        "PostalAddress.line1",
        "PostalAddress.line2",
        "PostalAddress.city",
        "PostalAddress.postal_code",
        "PostalAddress.region",
        "IdentityCreate.subject",
        # The shared dead-letter redrive names a topic, refused unless it is one of
        # the catalogue's, so it cannot carry a card number into storage.
        "RedriveCreate.topic",
    }


def _is_free_text(spec: dict[str, Any]) -> bool:
    options = spec.get("anyOf", [spec])
    return any(
        o.get("type") == "string"
        and "pattern" not in o
        and "format" not in o
        and "enum" not in o
        for o in options
    ) or any(o.get("type") == "string" and "@" in o.get("pattern", "") for o in options)


@pytest.mark.parametrize("card", CARD_NUMBERS)
async def test_card_numbers_in_any_text_field_are_rejected_and_never_echoed(
    portal: Portal, card: str, caplog: pytest.LogCaptureFixture
) -> None:
    alice = await portal.customer()
    invoice_id = await alice.invoice()
    thread_id = await _thread(alice)
    caplog.set_level(logging.DEBUG)

    for method, path, body, field in _text_fields(invoice_id, thread_id):
        response = await portal.client.request(
            method, path, json=_fill(body, card), headers=alice.headers
        )
        assert response.status_code == 422, (path, field, response.text)
        assert response.json()["detail"][0]["loc"] == ["body", *field.split(".")]
        assert card not in response.text
        assert card.replace(" ", "").replace("-", "") not in response.text

    assert card not in caplog.text
    details = (await alice.get("/v1/billing-details")).json()
    assert details["postal_address"] is None
    assert details["payment_method"] is None


async def test_text_with_ordinary_numbers_is_accepted(portal: Portal) -> None:
    alice = await portal.customer()

    response = await alice.post(
        "/v1/threads",
        {
            "subject": "PO 4500012345",
            "body": "Call +33 1 23 45 67 89, ref 1234567890123",
        },
    )

    assert response.status_code == 201, response.text


async def test_a_card_number_in_a_message_is_not_stored(portal: Portal) -> None:
    alice = await portal.customer()
    thread_id = await _thread(alice)

    await alice.post(
        f"/v1/threads/{thread_id}/messages", {"body": "my card 4111111111111111"}
    )

    thread = (await alice.get(f"/v1/threads/{thread_id}")).json()
    assert [m["body"] for m in thread["messages"]] == ["b"]


async def test_page_size_over_the_hard_cap_is_rejected(portal: Portal) -> None:
    alice = await portal.customer()

    response = await alice.get("/v1/invoices", params={"limit": 10**9})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "limit"]


async def test_page_size_is_clamped_to_the_configured_maximum(portal: Portal) -> None:
    alice = await portal.customer()
    for day in range(105):
        await alice.invoice(issue_date=date(2023, 1, 1) + timedelta(days=day))

    response = await alice.get("/v1/invoices", params={"limit": 500})

    assert len(response.json()["items"]) == portal.app.state.max_page_size
    assert response.json()["next_cursor"] is not None


async def test_cursor_walks_every_invoice_once_in_order(portal: Portal) -> None:
    alice = await portal.customer()
    issued = [
        await alice.invoice(issue_date=date(2024, 1, 1) + timedelta(days=d // 2))
        for d in range(7)
    ]
    seen: list[str] = []
    cursor = None

    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await alice.get("/v1/invoices", params=params)).json()
        seen += [i["invoice_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert sorted(seen) == sorted(issued)
    assert len(seen) == len(set(seen))


async def test_a_forged_cursor_gets_422(portal: Portal) -> None:
    alice = await portal.customer()

    response = await alice.get("/v1/invoices", params={"cursor": "bm90LWEtY3Vyc29y"})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "cursor"]


async def test_oversized_body_gets_413(portal: Portal) -> None:
    alice = await portal.customer()

    response = await alice.post("/v1/threads", {"subject": "s", "body": "x" * 40_000})

    assert response.status_code == 413


async def test_requests_beyond_the_rate_get_429_with_retry_after(
    portal: Portal,
) -> None:
    alice = await portal.customer()
    bob = await portal.customer()
    generous = portal.app.state.rate_limiter
    portal.app.state.rate_limiter = RateLimiter(rate=0.5, burst=3)
    try:
        statuses = [(await alice.get("/v1/invoices")).status_code for _ in range(4)]
        limited = await alice.get("/v1/account")
        other = await bob.get("/v1/invoices")
    finally:
        portal.app.state.rate_limiter = generous

    assert statuses == [200, 200, 200, 429]
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert other.status_code == 200
