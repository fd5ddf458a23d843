"""Metrics' reactions to ledger facts: keep one row of facts per invoice."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert

from arbor_metrics.adapters.tables import invoice_facts
from arbor_shared.events import InvoiceBalanceChanged, InvoiceSettled
from arbor_shared.kafka.consumer import Context, Handler


async def record_balance(ctx: Context, event: InvoiceBalanceChanged) -> None:
    """Remember the invoice the first time the ledger mentions it."""
    await ctx.session.execute(
        insert(invoice_facts)
        .values(
            invoice_id=event.invoice_id,
            customer_id=event.customer_id,
            currency=event.currency,
            amount_minor=event.amount_minor,
            issue_date=event.issue_date,
            due_date=event.due_date,
        )
        .on_conflict_do_nothing()
    )


async def record_settlement(ctx: Context, event: InvoiceSettled) -> None:
    """Store the settlement date; commutes with :func:`record_balance`."""
    values = {
        "invoice_id": event.invoice_id,
        "customer_id": event.customer_id,
        "currency": event.currency,
        "amount_minor": event.amount_minor,
        "issue_date": event.issue_date,
        "due_date": event.due_date,
        "settled_date": event.settled_date,
    }
    await ctx.session.execute(
        insert(invoice_facts)
        .values(**values)
        .on_conflict_do_update(
            index_elements=[invoice_facts.c.invoice_id],
            set_={"settled_date": event.settled_date},
        )
    )


HANDLERS: dict[str, Handler] = {
    InvoiceBalanceChanged.event_type: record_balance,
    InvoiceSettled.event_type: record_settlement,
}
