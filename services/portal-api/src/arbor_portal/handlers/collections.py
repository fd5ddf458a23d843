"""The read model's collections half: disputes, promises, plans and dunning actions.

Cases the portal itself opened come back on the cases topic; inserting with
``ON CONFLICT DO NOTHING`` makes that echo, and any redelivery, a no-op.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from arbor_portal.adapters.tables import (
    disputes,
    dunning_actions,
    payment_plans,
    promises,
)
from arbor_shared.events import (
    ActionReason,
    DisputeOpened,
    DisputeResolved,
    IncentiveOffered,
    LateFeeAssessed,
    PaymentPlanRequested,
    PromiseToPayBroken,
    PromiseToPayKept,
    PromiseToPayMade,
    ReminderCancelled,
    ReminderScheduled,
    ReminderSent,
)
from arbor_shared.kafka.consumer import Context


async def record_dispute(ctx: Context, event: DisputeOpened) -> None:
    """A dispute opened here or by the finance team."""
    await ctx.session.execute(
        insert(disputes)
        .values(
            dispute_id=event.dispute_id,
            customer_id=event.customer_id,
            invoice_id=event.invoice_id,
            currency=event.currency,
            amount_minor=event.amount_minor,
            reason=event.reason,
            origin=event.origin,
            status="open",
            opened_at=event.opened_at,
        )
        .on_conflict_do_nothing()
    )


async def record_dispute_resolution(ctx: Context, event: DisputeResolved) -> None:
    """Close the dispute with its outcome."""
    await ctx.session.execute(
        sa.update(disputes)
        .where(
            disputes.c.dispute_id == event.dispute_id,
            disputes.c.customer_id == event.customer_id,
        )
        .values(status="resolved", outcome=event.outcome, resolved_at=event.resolved_at)
    )


async def record_promise(ctx: Context, event: PromiseToPayMade) -> None:
    """A promise to pay made here or taken by the finance team."""
    await ctx.session.execute(
        insert(promises)
        .values(
            promise_id=event.promise_id,
            customer_id=event.customer_id,
            invoice_id=event.invoice_id,
            currency=event.currency,
            amount_minor=event.amount_minor,
            promised_date=event.promised_date,
            origin=event.origin,
            status="open",
            made_at=event.made_at,
        )
        .on_conflict_do_nothing()
    )


async def record_promise_kept(ctx: Context, event: PromiseToPayKept) -> None:
    """The promised amount arrived in time."""
    await _close_promise(ctx, event.customer_id, event.promise_id, "kept")


async def record_promise_broken(ctx: Context, event: PromiseToPayBroken) -> None:
    """Dunning found the promised date passed unpaid."""
    await _close_promise(ctx, event.customer_id, event.promise_id, "broken")


async def record_plan_request(ctx: Context, event: PaymentPlanRequested) -> None:
    """A payment-plan request, wherever it was made."""
    await ctx.session.execute(
        insert(payment_plans)
        .values(
            request_id=event.request_id,
            customer_id=event.customer_id,
            invoice_id=event.invoice_id,
            installments=event.installments,
            note=event.note,
            requested_at=event.requested_at,
        )
        .on_conflict_do_nothing()
    )


async def record_reminder_planned(ctx: Context, event: ReminderScheduled) -> None:
    """A reminder dunning plans to send; a sent or cancelled one stays so."""
    values = {
        "channel": event.channel,
        "planned_for": event.scheduled_for,
        "reason": _shown_reason(event.reason),
    }
    await _upsert_reminder(ctx, event.customer_id, event.invoice_id, event.step, values)


async def record_reminder_sent(ctx: Context, event: ReminderSent) -> None:
    """A reminder that went out, and why."""
    values = {
        "status": "sent",
        "channel": event.channel,
        "occurred_at": event.sent_at,
        "reason": _shown_reason(event.reason),
        "details": {
            "balance_minor": event.balance_minor,
            "currency": event.currency,
        },
    }
    await _upsert_reminder(ctx, event.customer_id, event.invoice_id, event.step, values)


async def record_reminder_cancelled(ctx: Context, event: ReminderCancelled) -> None:
    """A planned reminder that will not be sent, and why."""
    values = {
        "status": "cancelled",
        "occurred_at": event.cancelled_at,
        "cancel_reason": event.cancel_reason,
    }
    await _upsert_reminder(ctx, event.customer_id, event.invoice_id, event.step, values)


async def record_late_fee(ctx: Context, event: LateFeeAssessed) -> None:
    """A late fee, one row per fee id."""
    details = {
        "amount_minor": event.amount_minor,
        "currency": event.currency,
        "period": event.period,
    }
    await _add_action(
        ctx,
        f"fee:{event.fee_id}",
        event.customer_id,
        event.invoice_id,
        kind="late_fee",
        status="assessed",
        step=event.reason.step,
        occurred_at=event.assessed_at,
        details=details,
        reason=_shown_reason(event.reason),
    )


async def record_incentive(ctx: Context, event: IncentiveOffered) -> None:
    """An incentive offered on an invoice."""
    details = {
        "incentive": event.kind,
        "percent": event.percent,
        "valid_until": event.valid_until.isoformat() if event.valid_until else None,
    }
    await _add_action(
        ctx,
        f"incentive:{event.invoice_id}:{event.kind}:{event.reason.step}",
        event.customer_id,
        event.invoice_id,
        kind="incentive",
        status="offered",
        step=event.reason.step,
        occurred_at=event.offered_at,
        details=details,
        reason=_shown_reason(event.reason),
    )


def _shown_reason(reason: ActionReason) -> dict[str, Any]:
    # The customer sees the step and the facts it relied on, not the cohort name,
    # policy id or experiment variant: those are internal segmentation labels.
    return {"step": reason.step, "facts": reason.facts}


async def _close_promise(
    ctx: Context, customer_id: str, promise_id: str, status: str
) -> None:
    await ctx.session.execute(
        sa.update(promises)
        .where(
            promises.c.promise_id == promise_id,
            promises.c.customer_id == customer_id,
            promises.c.status == "open",
        )
        .values(status=status, closed_at=ctx.envelope.time)
    )


async def _upsert_reminder(
    ctx: Context, customer_id: str, invoice_id: str, step: str, values: dict[str, Any]
) -> None:
    action_id = f"reminder:{invoice_id}:{step}"
    statement = insert(dunning_actions).values(
        action_id=action_id,
        customer_id=customer_id,
        invoice_id=invoice_id,
        kind="reminder",
        step=step,
        **({"status": "planned"} | values),
    )
    # Only a planned reminder can change: "sent" and "cancelled" are final, so a
    # late ReminderScheduled redelivered after the send cannot resurrect it.
    await ctx.session.execute(
        statement.on_conflict_do_update(
            index_elements=[dunning_actions.c.action_id],
            set_=values,
            where=sa.and_(
                dunning_actions.c.customer_id == customer_id,
                dunning_actions.c.status == "planned",
            ),
        )
    )


async def _add_action(
    ctx: Context, action_id: str, customer_id: str, invoice_id: str, **values: Any
) -> None:
    await ctx.session.execute(
        insert(dunning_actions)
        .values(
            action_id=action_id,
            customer_id=customer_id,
            invoice_id=invoice_id,
            **values,
        )
        .on_conflict_do_nothing()
    )
