"""Small canonical events the tests build again and again: one customer, cus-1,
invoiced 100.00 EUR (or 5.00 for counting tests) on 2024-01-01, due 2024-01-31."""

from __future__ import annotations

from datetime import UTC, date, datetime

from arbor_shared.events import CohortChanged, InvoiceBalanceChanged, InvoiceIssued

ISSUED_ON = date(2024, 1, 1)
DUE_ON = date(2024, 1, 31)


def issued(invoice_id: str, customer_id: str = "cus-1") -> InvoiceIssued:
    """A 5.00 EUR invoice: the unit the consumer-loop tests count."""
    return InvoiceIssued(
        customer_id=customer_id,
        invoice_id=invoice_id,
        currency="EUR",
        amount_minor=500,
        issue_date=ISSUED_ON,
        due_date=DUE_ON,
        issued_at=datetime(2024, 1, 1, tzinfo=UTC),
    )


def open_balance(
    invoice_id: str = "inv-1", customer_id: str = "cus-1"
) -> InvoiceBalanceChanged:
    """The ledger fact of a 100.00 EUR invoice just issued, nothing paid."""
    return InvoiceBalanceChanged(
        customer_id=customer_id,
        invoice_id=invoice_id,
        currency="EUR",
        issue_date=ISSUED_ON,
        due_date=DUE_ON,
        amount_minor=10_000,
        paid_minor=0,
        credited_minor=0,
        written_off_minor=0,
        balance_minor=10_000,
        status="open",
        cause_event_id=f"issue-{invoice_id}",
        cause_event_type="InvoiceIssued",
        changed_at=datetime(2024, 1, 1, 9, tzinfo=UTC),
    )


def joined_punctual(customer_id: str = "cus-1") -> CohortChanged:
    """The customer's first cohort: punctual, from definition version 1."""
    return CohortChanged(
        customer_id=customer_id,
        from_cohort=None,
        to_cohort="punctual",
        definition_version=1,
        rule="on_time_rate >= 0.9",
        features={"on_time_rate": 1.0},
        version=1,
        changed_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
