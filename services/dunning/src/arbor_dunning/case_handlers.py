"""Dunning's reactions to disputes, promises to pay and payment-plan requests."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from arbor_dunning import planning
from arbor_dunning.adapters.metrics import DunningMetrics
from arbor_dunning.adapters.store import lock_invoice
from arbor_dunning.adapters.tables import invoices, promises
from arbor_shared.events import (
    DisputeOpened,
    DisputeResolved,
    PaymentPlanRequested,
    PromiseToPayKept,
    PromiseToPayMade,
)
from arbor_shared.events.dunning import CancelReason
from arbor_shared.kafka.consumer import Context


async def stop_pending(
    ctx: Context,
    invoice_id: str,
    reason: CancelReason,
    *,
    pause: bool,
    metrics: DunningMetrics,
) -> None:
    """Cancel or pause the invoice's pending steps and count each one stopped."""
    invoice = await lock_invoice(ctx.session, invoice_id)
    if invoice is None:
        return
    halted = await planning.stop(
        ctx.session, ctx.outbox, invoice, reason, ctx.clock.now(), pause=pause
    )
    for step, channel, variant in halted:
        metrics.action(step, channel, "paused" if pause else "cancelled", variant)


async def pause_for_dispute(
    ctx: Context, event: DisputeOpened, *, metrics: DunningMetrics
) -> None:
    """A disputed invoice is not chased until the dispute is resolved."""
    await _hold(ctx, event.invoice_id, "disputed")
    await stop_pending(ctx, event.invoice_id, "disputed", pause=True, metrics=metrics)


async def settle_dispute(
    ctx: Context, event: DisputeResolved, *, metrics: DunningMetrics
) -> None:
    """Resume if the debt stands (won or withdrawn); otherwise stop for good."""
    await _hold(ctx, event.invoice_id, None)
    if event.outcome == "lost":
        await stop_pending(
            ctx, event.invoice_id, "disputed", pause=False, metrics=metrics
        )
        return
    await _resume(ctx, event.invoice_id)


async def pause_for_promise(
    ctx: Context, event: PromiseToPayMade, *, metrics: DunningMetrics
) -> None:
    """Pause until the promised date; the scheduler notices a broken promise."""
    await ctx.session.execute(
        insert(promises)
        .values(
            promise_id=event.promise_id,
            invoice_id=event.invoice_id,
            customer_id=event.customer_id,
            promised_date=event.promised_date,
            state="open",
        )
        .on_conflict_do_nothing()
    )
    await _hold(ctx, event.invoice_id, "promised")
    await stop_pending(ctx, event.invoice_id, "promised", pause=True, metrics=metrics)


async def keep_promise(ctx: Context, event: PromiseToPayKept) -> None:
    """The promise was kept; the ledger's settlement cancels what is left."""
    await ctx.session.execute(
        sa.update(promises)
        .where(promises.c.promise_id == event.promise_id)
        .values(state="kept")
    )


async def pause_for_plan_request(
    ctx: Context, event: PaymentPlanRequested, *, metrics: DunningMetrics
) -> None:
    """A payment plan request is answered by a person: pause like a promise."""
    # TODO: resume when the request is declined — needs a PaymentPlanDeclined event.
    await _hold(ctx, event.invoice_id, "payment_plan")
    await stop_pending(ctx, event.invoice_id, "promised", pause=True, metrics=metrics)


async def _hold(ctx: Context, invoice_id: str, hold: str | None) -> None:
    await ctx.session.execute(
        sa.update(invoices).where(invoices.c.invoice_id == invoice_id).values(hold=hold)
    )


async def _resume(ctx: Context, invoice_id: str) -> None:
    invoice = await lock_invoice(ctx.session, invoice_id)
    if invoice is not None and invoice.collectable:
        await planning.resume(ctx.session, ctx.outbox, invoice)
