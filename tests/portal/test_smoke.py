"""Smoke: the portal starts and answers with the caller's own data only."""

from __future__ import annotations

from tests.portal.conftest import Portal


async def test_customer_sees_own_invoice(portal: Portal) -> None:
    alice = await portal.customer()
    invoice_id = await alice.invoice()

    response = await alice.get(f"/v1/invoices/{invoice_id}")

    assert response.status_code == 200, response.text
    assert response.json()["balance_minor"] == 120_000
