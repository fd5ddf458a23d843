"""The invoice list on its read pool: remembered links are checked on every page."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from arbor_portal.adapters.readpool import LinkHints, ReadPool
from arbor_portal.adapters.tables import identities
from tests.portal.conftest import FAR_EAST, Customer, Portal


async def _ids(customer: Customer, **params: str) -> list[str]:
    response = await customer.get("/v1/invoices", params=params)
    assert response.status_code == 200, response.text
    return [item["invoice_id"] for item in response.json()["items"]]


async def _days_overdue(customer: Customer) -> list[int]:
    page = (await customer.get("/v1/invoices")).json()
    return [item["days_overdue"] for item in page["items"]]


async def _relink(portal: Portal, subject: str, customer_id: str | None) -> None:
    """Change or remove a link in the table itself, as an operator's SQL would."""
    table = identities
    mine = table.c.subject == subject
    statement: sa.Executable = (
        sa.delete(table).where(mine)
        if customer_id is None
        else sa.update(table).where(mine).values(customer_id=customer_id)
    )
    async with portal.app.state.runtime.engine.begin() as connection:
        await connection.execute(statement)


async def test_linked_customer_without_invoices_gets_an_empty_page(
    portal: Portal,
) -> None:
    alice = await portal.customer()

    for _ in range(2):
        response = await alice.get("/v1/invoices")
        assert response.status_code == 200
        assert response.json() == {"items": [], "next_cursor": None}


async def test_list_follows_a_link_changed_outside_the_api(portal: Portal) -> None:
    alice = await portal.customer()
    bob = await portal.customer()
    alices = await alice.invoice(
        issue_date=date(2024, 1, 1), due_date=date(2024, 1, 31)
    )
    bobs = await bob.invoice(issue_date=date(2024, 1, 1), due_date=date(2024, 1, 31))
    assert await _ids(alice) == [alices]

    await _relink(portal, alice.subject, bob.customer_id)
    relinked = [await _ids(alice), await _ids(alice, status="overdue")]
    await _relink(portal, alice.subject, alice.customer_id)
    back = await _ids(alice, status="overdue")
    await _relink(portal, alice.subject, None)
    unlinked = await alice.get("/v1/invoices")

    assert relinked == [[bobs], [bobs]]
    assert back == [alices]
    assert unlinked.status_code == 403


async def test_overdue_filter_follows_a_link_changed_outside_the_api(
    portal: Portal,
) -> None:
    alice = await portal.customer()
    bob = await portal.customer()
    await alice.invoice(issue_date=date(2024, 1, 1), due_date=date(2024, 1, 31))
    bobs = await bob.invoice(issue_date=date(2024, 1, 1), due_date=date(2024, 1, 31))
    await _ids(alice)

    await _relink(portal, alice.subject, bob.customer_id)

    assert await _ids(alice, status="overdue") == [bobs]


@pytest.mark.usefixtures("fixed_clock")
async def test_list_counts_days_overdue_in_the_zone_set_a_moment_ago(
    portal: Portal,
) -> None:
    alice = await portal.customer()
    await alice.invoice(due_date=date(2024, 4, 1))
    assert await _days_overdue(alice) == [11]

    changed = await alice.patch("/v1/billing-details", {"time_zone": FAR_EAST})

    assert changed.status_code == 200, changed.text
    assert await _days_overdue(alice) == [12]


@pytest.mark.usefixtures("fixed_clock")
async def test_overdue_filter_uses_today_in_the_customers_zone(
    portal: Portal,
) -> None:
    alice = await portal.customer()
    due_yesterday_in_kiritimati = await alice.invoice(due_date=date(2024, 4, 12))
    assert await _ids(alice, status="overdue") == []

    changed = await alice.patch("/v1/billing-details", {"time_zone": FAR_EAST})

    assert changed.status_code == 200, changed.text
    assert await _ids(alice, status="overdue") == [due_yesterday_in_kiritimati]


async def test_list_answers_503_while_its_database_is_unreachable(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await portal.customer()
    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    unreachable = ReadPool(engine, schema="none", size=1)
    await unreachable.open()
    monkeypatch.setattr(portal.app.state, "read_pool", unreachable)
    try:
        response = await alice.get("/v1/invoices")
    finally:
        await unreachable.close()
        await engine.dispose()

    assert (response.status_code, response.headers["Retry-After"]) == (503, "1")


def test_link_hints_drop_the_least_recently_used() -> None:
    hints = LinkHints(max_size=2)
    hints.remember("a", "cus-a")
    hints.remember("b", "cus-b")
    assert hints.get("a") == "cus-a"

    hints.remember("c", "cus-c")

    assert (hints.get("a"), hints.get("b"), hints.get("c")) == ("cus-a", None, "cus-c")


def test_forgotten_link_hint_is_gone() -> None:
    hints = LinkHints()
    hints.remember("a", "cus-a")

    hints.forget("a")
    hints.forget("never-seen")

    assert hints.get("a") is None
