"""Dunning's reactions to customer, invoice, ledger and cohort facts."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from arbor_dunning import planning
from arbor_dunning.adapters.metrics import DunningMetrics
from arbor_dunning.adapters.store import Invoice, lock_invoice, open_invoice_ids
from arbor_dunning.adapters.tables import customers, invoices
from arbor_dunning.case_handlers import (
    keep_promise,
    pause_for_dispute,
    pause_for_plan_request,
    pause_for_promise,
    settle_dispute,
    stop_pending,
)
from arbor_shared.events import (
    BillingDetailsChanged,
    CohortChanged,
    CustomerCreated,
    CustomerUpdated,
    DisputeOpened,
    DisputeResolved,
    InvoiceBalanceChanged,
    InvoiceIssued,
    InvoiceReopened,
    InvoiceSettled,
    InvoiceVoided,
    InvoiceWrittenOff,
    PaymentPlanRequested,
    PromiseToPayKept,
    PromiseToPayMade,
)
from arbor_shared.events.dunning import CancelReason
from arbor_shared.kafka.classify import PoisonRecordError
from arbor_shared.kafka.consumer import Context, Handler

logger = logging.getLogger(__name__)

_SETTLED_REASON: Mapping[str, CancelReason] = {
    "payment": "settled",
    "credit": "credited",
    "write_off": "written_off",
    "void": "voided",
}
_CAUSE_REASON: Mapping[str, CancelReason] = {
    "CreditNoteIssued": "credited",
    "InvoiceWrittenOff": "written_off",
    "InvoiceVoided": "voided",
}
_STATUS_REASON: Mapping[str, CancelReason] = {
    "settled": "settled",
    "voided": "voided",
    "written_off": "written_off",
}


async def remember_customer(
    ctx: Context, event: CustomerCreated | CustomerUpdated
) -> None:
    """Keep the customer's zone, country, language and channel; re-plan if moved."""
    _require_zone(event.time_zone)
    values = {
        "name": event.name,
        "email": event.email,
        "country": event.country,
        "time_zone": event.time_zone,
        "language": event.language,
        "preferred_channel": event.preferred_channel,
    }
    before = (
        await ctx.session.execute(
            sa.select(customers.c.time_zone, customers.c.country).where(
                customers.c.customer_id == event.customer_id
            )
        )
    ).one_or_none()
    await ctx.session.execute(
        insert(customers)
        .values(customer_id=event.customer_id, **values)
        .on_conflict_do_update(index_elements=[customers.c.customer_id], set_=values)
    )
    moved = (
        before is not None
        and before.time_zone is not None
        and tuple(before) != (event.time_zone, event.country)
    )
    await _replan_customer(ctx, event.customer_id, force=moved)


async def apply_billing_details(ctx: Context, event: BillingDetailsChanged) -> None:
    """Apply the fields the customer changed in the portal."""
    values = {
        name: getattr(event, name)
        for name in ("email", "preferred_channel", "language", "time_zone")
        if name in event.changed_fields and getattr(event, name) is not None
    }
    if not values:
        return
    if "time_zone" in values:
        _require_zone(values["time_zone"])
    await ctx.session.execute(
        sa.update(customers)
        .where(customers.c.customer_id == event.customer_id)
        .values(**values)
    )
    if "time_zone" in values:
        await _replan_customer(ctx, event.customer_id, force=True)


async def _replan_customer(
    ctx: Context, customer_id: str, *, force: bool = False
) -> None:
    for invoice_id in await open_invoice_ids(ctx.session, customer_id):
        await planning.plan(
            ctx.session, ctx.outbox, invoice_id, ctx.clock.now(), force=force
        )


async def move_cohort(ctx: Context, event: CohortChanged) -> None:
    """Hand the customer's open invoices over to the new cohort's policy."""
    membership = {"cohort": event.to_cohort, "cohort_version": event.version}
    moved = await ctx.session.execute(
        insert(customers)
        .values(customer_id=event.customer_id, **membership)
        .on_conflict_do_update(
            index_elements=[customers.c.customer_id],
            set_=membership,
            where=customers.c.cohort_version < event.version,
        )
        .returning(customers.c.customer_id)
    )
    if moved.one_or_none() is None:
        # A stale version: the newest move wins whatever the arrival order.
        logger.info(
            "ignored cohort change v%d of customer %s (event %s)",
            event.version,
            event.customer_id,
            ctx.envelope.id,
        )
        return
    await _replan_customer(ctx, event.customer_id)


async def record_invoice(ctx: Context, event: InvoiceIssued) -> None:
    """Store the issued invoice and plan its steps."""
    await _upsert_invoice(
        ctx,
        event.customer_id,
        event.invoice_id,
        number=event.number,
        currency=event.currency,
        amount_minor=event.amount_minor,
        issue_date=event.issue_date,
        due_date=event.due_date,
    )
    await planning.plan(ctx.session, ctx.outbox, event.invoice_id, ctx.clock.now())


async def apply_balance(
    ctx: Context, event: InvoiceBalanceChanged, *, metrics: DunningMetrics
) -> None:
    """Take the ledger's balance; stop dunning the moment nothing is owed."""
    before = await lock_invoice(ctx.session, event.invoice_id)
    if before is not None:
        _count_recovered(before, event, metrics)
    await _upsert_invoice(
        ctx,
        event.customer_id,
        event.invoice_id,
        number=None,
        currency=event.currency,
        amount_minor=event.amount_minor,
        issue_date=event.issue_date,
        due_date=event.due_date,
    )
    await ctx.session.execute(
        sa.update(invoices)
        .where(invoices.c.invoice_id == event.invoice_id)
        .values(balance_minor=event.balance_minor, status=event.status)
    )
    if event.status != "open" or event.balance_minor <= 0:
        reason = _CAUSE_REASON.get(
            event.cause_event_type, _STATUS_REASON.get(event.status, "settled")
        )
        await stop_pending(ctx, event.invoice_id, reason, pause=False, metrics=metrics)
        return
    await planning.plan_if_new(
        ctx.session, ctx.outbox, event.invoice_id, ctx.clock.now()
    )


def _count_recovered(
    before: Invoice, event: InvoiceBalanceChanged, metrics: DunningMetrics
) -> None:
    # Recovered = cash paid after the first contact; counted on the balance the
    # ledger lowered, so partial payments count and the settlement that follows
    # (its own fact, once the balance is already zero) adds nothing twice.
    paid_now = before.balance_minor - event.balance_minor
    if (
        before.contacted
        and event.cause_event_type == "PaymentReceived"
        and paid_now > 0
    ):
        metrics.recovered.labels(event.currency).inc(paid_now)


async def _upsert_invoice(
    ctx: Context, customer_id: str, invoice_id: str, **facts: object
) -> None:
    values = {k: v for k, v in facts.items() if v is not None}
    await ctx.session.execute(
        insert(invoices)
        .values(
            invoice_id=invoice_id,
            customer_id=customer_id,
            balance_minor=facts["amount_minor"],
            status="open",
            **values,
        )
        .on_conflict_do_nothing()
    )
    if facts.get("number"):
        await ctx.session.execute(
            sa.update(invoices)
            .where(invoices.c.invoice_id == invoice_id)
            .values(number=facts["number"])
        )


async def close_settled(
    ctx: Context, event: InvoiceSettled, *, metrics: DunningMetrics
) -> None:
    """Cancel what is pending, for good."""
    if await lock_invoice(ctx.session, event.invoice_id) is None:
        # Settled before its issue reached us: remember it as settled, so the
        # late InvoiceIssued plans nothing (the outcome must not depend on order).
        await _upsert_invoice(
            ctx,
            event.customer_id,
            event.invoice_id,
            number=None,
            currency=event.currency,
            amount_minor=event.amount_minor,
            issue_date=event.issue_date,
            due_date=event.due_date,
        )
    await ctx.session.execute(
        sa.update(invoices)
        .where(invoices.c.invoice_id == event.invoice_id)
        .values(balance_minor=0, status="settled")
    )
    await stop_pending(
        ctx,
        event.invoice_id,
        _SETTLED_REASON[event.settled_by],
        pause=False,
        metrics=metrics,
    )


async def reopen(ctx: Context, event: InvoiceReopened) -> None:
    """A settled invoice owes again: plan from the next step still ahead."""
    await ctx.session.execute(
        sa.update(invoices)
        .where(invoices.c.invoice_id == event.invoice_id)
        .values(balance_minor=event.balance_minor, status="open")
    )
    await planning.plan(
        ctx.session, ctx.outbox, event.invoice_id, ctx.clock.now(), force=True
    )


async def cancel_voided(
    ctx: Context, event: InvoiceVoided, *, metrics: DunningMetrics
) -> None:
    await _close(ctx, event.invoice_id, "voided", metrics)


async def cancel_written_off(
    ctx: Context, event: InvoiceWrittenOff, *, metrics: DunningMetrics
) -> None:
    await _close(ctx, event.invoice_id, "written_off", metrics)


async def _close(
    ctx: Context, invoice_id: str, status: CancelReason, metrics: DunningMetrics
) -> None:
    await ctx.session.execute(
        sa.update(invoices)
        .where(invoices.c.invoice_id == invoice_id)
        .values(status=status)
    )
    await stop_pending(ctx, invoice_id, status, pause=False, metrics=metrics)


def _require_zone(name: str) -> None:
    # Every dunning date is computed in this zone; a bad one is dead-lettered
    # before it is stored, never discovered later by the scheduler.
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PoisonRecordError(
            "invalid_data", f"time_zone {name!r} is not an IANA zone"
        ) from exc


def build_handlers(metrics: DunningMetrics) -> dict[str, Handler]:
    """The handler of every event type dunning consumes."""
    # These stop pending steps, and every stopped step is counted by outcome.
    stopping: dict[str, Callable[..., Awaitable[None]]] = {
        InvoiceSettled.event_type: close_settled,
        InvoiceVoided.event_type: cancel_voided,
        InvoiceWrittenOff.event_type: cancel_written_off,
        InvoiceBalanceChanged.event_type: apply_balance,
        DisputeOpened.event_type: pause_for_dispute,
        DisputeResolved.event_type: settle_dispute,
        PromiseToPayMade.event_type: pause_for_promise,
        PaymentPlanRequested.event_type: pause_for_plan_request,
    }
    plain: dict[str, Handler] = {
        CustomerCreated.event_type: remember_customer,
        CustomerUpdated.event_type: remember_customer,
        BillingDetailsChanged.event_type: apply_billing_details,
        CohortChanged.event_type: move_cohort,
        InvoiceIssued.event_type: record_invoice,
        InvoiceReopened.event_type: reopen,
        PromiseToPayKept.event_type: keep_promise,
    }
    counted: dict[str, Handler] = {
        event_type: functools.partial(handler, metrics=metrics)
        for event_type, handler in stopping.items()
    }
    return plain | counted
