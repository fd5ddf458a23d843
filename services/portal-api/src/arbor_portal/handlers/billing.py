"""The read model's billing half: customers, invoices, payments and ledger balances.

Every reaction is an upsert keyed by the business id, so a redelivered or duplicated
event (two event ids for one payment) changes nothing, and events of different topics
may arrive in any order (RELIABILITY P5). An upsert never moves a row to another
customer: a conflicting id from a different customer leaves the row as it was.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from arbor_portal.adapters.tables import balances, customers, invoices, transactions
from arbor_shared.events import (
    CreditNoteIssued,
    CreditNoteVoided,
    CustomerBalanceChanged,
    CustomerCreated,
    CustomerUpdated,
    InvoiceBalanceChanged,
    InvoiceIssued,
    InvoiceReopened,
    InvoiceSettled,
    InvoiceVoided,
    InvoiceWrittenOff,
    PaymentReceived,
    PaymentRefunded,
)
from arbor_shared.events.billing import CreditNoteFigures
from arbor_shared.kafka.consumer import Context

_PROFILE_FIELDS = (
    "name",
    "email",
    "country",
    "time_zone",
    "currency",
    "language",
    "preferred_channel",
)


async def record_customer(
    ctx: Context, event: CustomerCreated | CustomerUpdated
) -> None:
    """Keep the latest profile; an older event never overwrites a newer change."""
    values: dict[str, Any] = {f: getattr(event, f) for f in _PROFILE_FIELDS}
    values["profile_at"] = ctx.envelope.time
    statement = insert(customers).values(customer_id=event.customer_id, **values)
    await ctx.session.execute(
        statement.on_conflict_do_update(
            index_elements=[customers.c.customer_id],
            set_=values,
            where=customers.c.profile_at <= ctx.envelope.time,
        )
    )


async def record_invoice(ctx: Context, event: InvoiceIssued) -> None:
    """Store the invoice with its lines; ledger columns stay the ledger's."""
    values: dict[str, Any] = {
        "number": event.number,
        "currency": event.currency,
        "amount_minor": event.amount_minor,
        "issue_date": event.issue_date,
        "due_date": event.due_date,
        "issued_at": event.issued_at,
        "lines": [line.model_dump() for line in event.lines],
    }
    await _upsert_invoice(ctx, event.customer_id, event.invoice_id, values, values)


async def record_invoice_balance(ctx: Context, event: InvoiceBalanceChanged) -> None:
    """Take the ledger's balance of one invoice; the newest movement wins."""
    ledger: dict[str, Any] = {
        "status": event.status,
        "balance_minor": event.balance_minor,
        "paid_minor": event.paid_minor,
        "credited_minor": event.credited_minor,
        "written_off_minor": event.written_off_minor,
        "ledger_at": event.changed_at,
    }
    if event.status != "settled":
        ledger["settled_date"] = None
    await _upsert_ledger(ctx, event, ledger, event.changed_at)


async def record_settlement(ctx: Context, event: InvoiceSettled) -> None:
    """Mark the invoice settled on the ledger's settlement date."""
    ledger = {
        "status": _settled_status(event),
        "balance_minor": 0,
        "paid_minor": event.paid_minor,
        "credited_minor": event.credited_minor,
        "written_off_minor": event.written_off_minor,
        "settled_date": event.settled_date,
        "ledger_at": event.settled_at,
    }
    await _upsert_ledger(ctx, event, ledger, event.settled_at)


async def record_reopening(ctx: Context, event: InvoiceReopened) -> None:
    """A settled invoice owes money again."""
    await ctx.session.execute(
        sa.update(invoices)
        .where(
            invoices.c.invoice_id == event.invoice_id,
            invoices.c.customer_id == event.customer_id,
            _not_newer(event.reopened_at),
        )
        .values(
            status="open",
            balance_minor=event.balance_minor,
            settled_date=None,
            ledger_at=event.reopened_at,
        )
    )


async def record_void(ctx: Context, event: InvoiceVoided) -> None:
    """A voided invoice is no longer owed, whatever the ledger says later."""
    await _set_terminal(event.customer_id, event.invoice_id, "voided", ctx)


async def record_write_off(ctx: Context, event: InvoiceWrittenOff) -> None:
    """A written-off invoice is no longer collected."""
    await _set_terminal(event.customer_id, event.invoice_id, "written_off", ctx)


async def record_customer_balance(ctx: Context, event: CustomerBalanceChanged) -> None:
    """The account balance per currency, from the ledger only."""
    values = {
        "open_balance_minor": event.open_balance_minor,
        "unapplied_cash_minor": event.unapplied_cash_minor,
        "changed_at": event.changed_at,
    }
    statement = insert(balances).values(
        customer_id=event.customer_id, currency=event.currency, **values
    )
    await ctx.session.execute(
        statement.on_conflict_do_update(
            index_elements=[balances.c.customer_id, balances.c.currency],
            set_=values,
            where=balances.c.changed_at <= event.changed_at,
        )
    )


async def record_payment(ctx: Context, event: PaymentReceived) -> None:
    """A payment and how the payer allocated it."""
    await _add_entry(
        ctx,
        event.customer_id,
        kind="payment",
        source_id=event.payment_id,
        currency=event.currency,
        amount_minor=event.amount_minor,
        occurred_at=event.received_at,
        method=event.method,
        allocations=[a.model_dump() for a in event.allocations],
    )


async def record_refund(ctx: Context, event: PaymentRefunded) -> None:
    """Money returned to the customer from an earlier payment."""
    await _add_entry(
        ctx,
        event.customer_id,
        kind="refund",
        source_id=event.refund_id,
        currency=event.currency,
        amount_minor=event.amount_minor,
        occurred_at=event.refunded_at,
        payment_id=event.payment_id,
    )


async def record_credit_note(ctx: Context, event: CreditNoteIssued) -> None:
    """A credit note against one invoice."""
    await _add_note_entry(ctx, event, "credit_note", event.issued_at)


async def record_credit_note_void(ctx: Context, event: CreditNoteVoided) -> None:
    """A credit note withdrawn: listed beside the note, against the same invoice."""
    await _add_note_entry(ctx, event, "credit_note_void", event.voided_at)


async def _add_note_entry(
    ctx: Context, event: CreditNoteFigures, kind: str, occurred_at: datetime
) -> None:
    await _add_entry(
        ctx,
        event.customer_id,
        kind=kind,
        source_id=event.credit_note_id,
        currency=event.currency,
        amount_minor=event.amount_minor,
        occurred_at=occurred_at,
        invoice_id=event.invoice_id,
        note=event.reason,
        allocations=[
            {"invoice_id": event.invoice_id, "amount_minor": event.amount_minor}
        ],
    )


def _settled_status(event: InvoiceSettled) -> str:
    if event.settled_by == "void":
        return "voided"
    if event.settled_by == "write_off":
        return "written_off"
    return "settled"


def _not_newer(moment: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(invoices.c.ledger_at.is_(None), invoices.c.ledger_at <= moment)


async def _upsert_ledger(
    ctx: Context,
    event: InvoiceBalanceChanged | InvoiceSettled,
    ledger: dict[str, Any],
    moment: datetime,
) -> None:
    # The ledger repeats the invoice's terms, so a balance that overtakes the
    # InvoiceIssued event still gives the customer a complete row to look at.
    terms = {
        "currency": event.currency,
        "amount_minor": event.amount_minor,
        "issue_date": event.issue_date,
        "due_date": event.due_date,
    }
    await _upsert_invoice(
        ctx,
        event.customer_id,
        event.invoice_id,
        terms | ledger,
        ledger,
        only_if=_not_newer(moment),
    )


async def _upsert_invoice(
    ctx: Context,
    customer_id: str,
    invoice_id: str,
    values: dict[str, Any],
    on_conflict: dict[str, Any],
    *,
    only_if: sa.ColumnElement[bool] | None = None,
) -> None:
    mine = invoices.c.customer_id == customer_id
    condition = mine if only_if is None else sa.and_(mine, only_if)
    statement = insert(invoices).values(
        invoice_id=invoice_id, customer_id=customer_id, **values
    )
    await ctx.session.execute(
        statement.on_conflict_do_update(
            index_elements=[invoices.c.invoice_id], set_=on_conflict, where=condition
        )
    )


async def _set_terminal(
    customer_id: str, invoice_id: str, status: str, ctx: Context
) -> None:
    await ctx.session.execute(
        sa.update(invoices)
        .where(
            invoices.c.invoice_id == invoice_id, invoices.c.customer_id == customer_id
        )
        .values(status=status)
    )


async def _add_entry(
    ctx: Context, customer_id: str, *, kind: str, source_id: str, **values: Any
) -> None:
    await ctx.session.execute(
        insert(transactions)
        .values(
            entry_id=f"{kind}:{source_id}",
            customer_id=customer_id,
            kind=kind,
            source_id=source_id,
            **values,
        )
        .on_conflict_do_nothing()
    )
