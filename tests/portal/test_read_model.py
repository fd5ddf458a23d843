"""The read model built from consumed events, seen through the customer routes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from arbor_shared.events import (
    ActionReason,
    Allocation,
    CreditNoteIssued,
    CreditNoteVoided,
    CustomerBalanceChanged,
    CustomerCreated,
    InvoiceIssued,
    InvoiceLine,
    InvoiceSettled,
    PaymentReceived,
    PaymentRefunded,
    ReminderCancelled,
    ReminderScheduled,
    ReminderSent,
)
from tests.portal.conftest import (
    CLOCK_AT,
    FAR_EAST,
    NOW,
    Customer,
    Portal,
    ledger_balance,
)

REASON = ActionReason(
    policy_id="pol-late",
    policy_version=3,
    variant="B",
    cohort="chronically_late",
    step="due_plus_7",
    facts={"days_past_due": 7},
)


async def test_payment_refund_credit_and_its_void_show_in_history_with_allocations(
    portal: Portal,
) -> None:
    alice = await portal.customer()
    invoice_id = await alice.invoice()
    await portal.apply(
        PaymentReceived(
            customer_id=alice.customer_id,
            payment_id="pay-1",
            currency="EUR",
            amount_minor=70_000,
            received_at=NOW,
            allocations=(Allocation(invoice_id=invoice_id, amount_minor=60_000),),
        ),
        PaymentRefunded(
            customer_id=alice.customer_id,
            refund_id="ref-1",
            payment_id="pay-1",
            currency="EUR",
            amount_minor=10_000,
            refunded_at=NOW + timedelta(days=1),
        ),
        CreditNoteIssued(
            customer_id=alice.customer_id,
            credit_note_id="cn-1",
            invoice_id=invoice_id,
            currency="EUR",
            amount_minor=5_000,
            issued_at=NOW + timedelta(days=2),
        ),
        CreditNoteVoided(
            customer_id=alice.customer_id,
            credit_note_id="cn-1",
            invoice_id=invoice_id,
            currency="EUR",
            amount_minor=5_000,
            reason="issued in error",
            voided_at=NOW + timedelta(days=3),
        ),
    )

    history = (await alice.get("/v1/payments")).json()["items"]
    payment = (await alice.get("/v1/payments/pay-1")).json()
    detail = (await alice.get(f"/v1/invoices/{invoice_id}")).json()

    assert [(e["kind"], e["id"]) for e in history] == [
        ("credit_note_void", "cn-1"),
        ("credit_note", "cn-1"),
        ("refund", "ref-1"),
        ("payment", "pay-1"),
    ]
    assert payment["allocations"] == [
        {"invoice_id": invoice_id, "amount_minor": 60_000}
    ]
    assert [r["id"] for r in payment["refunds"]] == ["ref-1"]
    assert [(p["kind"], p["id"]) for p in detail["payments"]] == [
        ("payment", "pay-1"),
        ("credit_note", "cn-1"),
        ("credit_note_void", "cn-1"),
    ]
    assert history[0]["note"] == "issued in error"


async def test_the_same_payment_delivered_twice_is_listed_once(portal: Portal) -> None:
    alice = await portal.customer()
    payment = PaymentReceived(
        customer_id=alice.customer_id,
        payment_id="pay-dup",
        currency="EUR",
        amount_minor=1_000,
        received_at=NOW,
    )

    await portal.apply(payment)
    await portal.apply(payment)

    assert len((await alice.get("/v1/payments")).json()["items"]) == 1


async def test_invoice_detail_lists_every_line_as_issued(portal: Portal) -> None:
    alice = await portal.customer()
    lines = (
        InvoiceLine(
            description="Licence seats, April",
            quantity=3,
            unit_amount_minor=25_000,
            amount_minor=75_000,
        ),
        InvoiceLine(
            description="Onboarding workshop",
            quantity=1,
            unit_amount_minor=45_000,
            amount_minor=45_000,
        ),
    )
    await portal.apply(
        InvoiceIssued(
            customer_id=alice.customer_id,
            invoice_id="inv-lines",
            currency="EUR",
            amount_minor=120_000,
            issue_date=date(2024, 4, 1),
            due_date=date(2024, 4, 30),
            issued_at=NOW,
            lines=lines,
        )
    )

    detail = (await alice.get("/v1/invoices/inv-lines")).json()

    assert detail["lines"] == [
        {
            "description": "Licence seats, April",
            "quantity": 3,
            "unit_amount_minor": 25_000,
            "amount_minor": 75_000,
        },
        {
            "description": "Onboarding workshop",
            "quantity": 1,
            "unit_amount_minor": 45_000,
            "amount_minor": 45_000,
        },
    ]
    assert detail["amount_minor"] == 120_000


async def _customer_in(portal: Portal, time_zone: str) -> Customer:
    customer = await portal.customer()
    await portal.apply(
        CustomerCreated(
            customer_id=customer.customer_id,
            name="Far East Ltd",
            country="KI",
            time_zone=time_zone,
            currency="EUR",
            started_on=date(2023, 1, 1),
        )
    )
    return customer


@pytest.mark.usefixtures("fixed_clock")
async def test_days_overdue_count_in_the_customers_time_zone(portal: Portal) -> None:
    customer = await _customer_in(portal, FAR_EAST)
    due = date(2024, 4, 1)
    local_today = CLOCK_AT.astimezone(ZoneInfo(FAR_EAST)).date()
    open_id = await customer.invoice(due_date=due)
    settled_id = await customer.invoice(due_date=due, balance=0)
    not_due_id = await customer.invoice(due_date=local_today)

    async def days_overdue(invoice_id: str) -> int:
        detail = (await customer.get(f"/v1/invoices/{invoice_id}")).json()
        return int(detail["days_overdue"])

    assert local_today == date(2024, 4, 13)
    assert await days_overdue(open_id) == (local_today - due).days == 12
    assert await days_overdue(settled_id) == 0
    assert await days_overdue(not_due_id) == 0


@pytest.mark.usefixtures("fixed_clock")
async def test_days_overdue_without_a_time_zone_count_in_utc(portal: Portal) -> None:
    customer = await portal.customer()
    invoice_id = await customer.invoice(due_date=date(2024, 4, 1))

    detail = (await customer.get(f"/v1/invoices/{invoice_id}")).json()

    assert detail["days_overdue"] == (CLOCK_AT.date() - date(2024, 4, 1)).days == 11


async def test_invoice_detail_shows_dunning_actions_with_reasons(
    portal: Portal,
) -> None:
    alice = await portal.customer()
    invoice_id = await alice.invoice()
    base = {"customer_id": alice.customer_id, "invoice_id": invoice_id}
    await portal.apply(
        ReminderScheduled(
            **base,
            step="due_plus_7",
            channel="email",
            scheduled_for=NOW,
            reason=REASON,
        ),
        ReminderSent(
            **base,
            step="due_plus_7",
            channel="email",
            template="gentle",
            balance_minor=120_000,
            currency="EUR",
            sent_at=NOW,
            reason=REASON,
        ),
        ReminderScheduled(
            **base,
            step="due_plus_14",
            channel="sms",
            scheduled_for=NOW + timedelta(days=7),
            reason=REASON,
        ),
    )

    dunning = (await alice.get(f"/v1/invoices/{invoice_id}")).json()["dunning"]

    assert [(a["step"], a["status"]) for a in dunning] == [
        ("due_plus_7", "sent"),
        ("due_plus_14", "planned"),
    ]
    assert dunning[0]["reason"] == {
        "step": "due_plus_7",
        "facts": {"days_past_due": 7},
    }
    assert "chronically_late" not in str(dunning)


async def test_a_cancelled_reminder_stays_cancelled_after_a_late_schedule(
    portal: Portal,
) -> None:
    alice = await portal.customer()
    invoice_id = await alice.invoice()
    base = {"customer_id": alice.customer_id, "invoice_id": invoice_id}
    scheduled = ReminderScheduled(
        **base, step="s1", channel="email", scheduled_for=NOW, reason=REASON
    )

    await portal.apply(
        scheduled,
        ReminderCancelled(
            **base, step="s1", cancel_reason="disputed", cancelled_at=NOW
        ),
        scheduled,
    )

    [action] = (await alice.get(f"/v1/invoices/{invoice_id}")).json()["dunning"]
    assert (action["status"], action["cancel_reason"]) == ("cancelled", "disputed")


async def test_an_older_ledger_balance_does_not_overwrite_a_newer_one(
    portal: Portal,
) -> None:
    alice = await portal.customer()
    invoice_id = await alice.invoice(balance=None)
    newer = ledger_balance(alice.customer_id, invoice_id, 120_000, 20_000)
    older = newer.model_copy(
        update={"balance_minor": 90_000, "changed_at": NOW - timedelta(hours=1)}
    )

    await portal.apply(newer, older)

    detail = (await alice.get(f"/v1/invoices/{invoice_id}")).json()
    assert detail["balance_minor"] == 20_000


async def test_a_ledger_balance_before_the_invoice_still_lists_it(
    portal: Portal,
) -> None:
    alice = await portal.customer()

    await portal.apply(ledger_balance(alice.customer_id, "inv-early", 5_000, 5_000))

    detail = (await alice.get("/v1/invoices/inv-early")).json()
    assert (detail["amount_minor"], detail["balance_minor"]) == (5_000, 5_000)


async def test_filters_by_status_overdue_and_issue_date(portal: Portal) -> None:
    alice = await portal.customer()
    today = datetime.now(UTC).date()
    overdue = await alice.invoice(
        issue_date=date(2024, 1, 1), due_date=date(2024, 1, 31)
    )
    not_due = await alice.invoice(issue_date=today, due_date=today + timedelta(days=30))
    settled = await alice.invoice(issue_date=date(2024, 2, 1), balance=0)

    async def ids(**params: str) -> list[str]:
        page = (await alice.get("/v1/invoices", params=params)).json()
        return [i["invoice_id"] for i in page["items"]]

    assert await ids(status="overdue") == [overdue]
    assert sorted(await ids(status="open")) == sorted([overdue, not_due])
    assert await ids(status="settled") == [settled]
    assert await ids(issued_from="2024-01-15", issued_to="2024-02-15") == [settled]


async def test_account_summary_ages_the_open_balance_in_the_customer_zone(
    portal: Portal,
) -> None:
    alice = await portal.customer()
    today = datetime.now(UTC).date()
    await portal.apply(
        CustomerCreated(
            customer_id=alice.customer_id,
            name="Alice GmbH",
            country="DE",
            time_zone="Europe/Berlin",
            currency="EUR",
            started_on=date(2023, 1, 1),
        ),
        CustomerBalanceChanged(
            customer_id=alice.customer_id,
            currency="EUR",
            open_balance_minor=30_000,
            unapplied_cash_minor=500,
            changed_at=NOW,
        ),
    )
    await alice.invoice(amount=10_000, balance=10_000, due_date=today + timedelta(5))
    await alice.invoice(amount=20_000, balance=20_000, due_date=today - timedelta(45))
    settled_late = await alice.invoice(amount=1_000, balance=None)
    await portal.apply(
        InvoiceSettled(
            customer_id=alice.customer_id,
            invoice_id=settled_late,
            currency="EUR",
            issue_date=date(2024, 3, 1),
            due_date=date(2024, 3, 31),
            amount_minor=1_000,
            paid_minor=1_000,
            credited_minor=0,
            written_off_minor=0,
            settled_by="payment",
            settled_at=NOW,
            settled_date=date(2024, 4, 12),
        )
    )

    summary = (await alice.get("/v1/account")).json()

    [eur] = summary["balances"]
    assert eur["open_balance_minor"] == 30_000
    assert eur["unapplied_cash_minor"] == 500
    assert eur["overdue_minor"] == 20_000
    assert eur["aging"] == {
        "current": 10_000,
        "1_30": 0,
        "31_60": 20_000,
        "61_90": 0,
        "90_plus": 0,
    }
    assert summary["on_time"] == {
        "invoices_due": 2,
        "paid_on_time": 0,
        "rate_percent": 0,
    }
