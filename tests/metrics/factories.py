"""Small builders of domain facts for the metrics unit tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from arbor_metrics.domain.facts import Invoice, Snapshot, sort_snapshots


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=UTC)


def balance(
    day: date,
    balance_minor: int,
    *,
    amount: int,
    paid: int = 0,
    credited: int = 0,
    written_off: int = 0,
    status: str = "open",
    cause: str = "c",
) -> Snapshot:
    return Snapshot(
        kind="balance",
        at=midnight(day),
        effective=day,
        cause=cause,
        balance_minor=balance_minor,
        status=status,
        amount_minor=amount,
        paid_minor=paid,
        credited_minor=credited,
        written_off_minor=written_off,
    )


def settled(
    day: date,
    *,
    amount: int,
    by: str = "payment",
    paid: int | None = None,
    credited: int = 0,
    written_off: int = 0,
) -> Snapshot:
    return Snapshot(
        kind="settled",
        at=midnight(day),
        effective=day,
        cause="",
        balance_minor=0,
        status="settled",
        amount_minor=amount,
        paid_minor=amount - credited - written_off if paid is None else paid,
        credited_minor=credited,
        written_off_minor=written_off,
        settled_date=day,
        settled_by=by,
    )


def reopened(day: date, balance_minor: int) -> Snapshot:
    return Snapshot(
        kind="reopened",
        at=midnight(day),
        effective=day,
        cause="",
        balance_minor=balance_minor,
        status="open",
    )


def invoice(
    invoice_id: str,
    issue: date,
    due: date,
    amount: int,
    *snapshots: Snapshot,
    customer: str = "cus-1",
    currency: str = "EUR",
) -> Invoice:
    opening = balance(issue, amount, amount=amount, cause="issued")
    return Invoice(
        invoice_id=invoice_id,
        customer_id=customer,
        currency=currency,
        issue_date=issue,
        due_date=due,
        amount_minor=amount,
        snapshots=sort_snapshots((opening, *snapshots)),
    )
