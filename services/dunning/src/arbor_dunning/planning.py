"""Writing a policy's plan for an invoice as rows, and stopping or resuming it."""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_dunning.adapters.policy_document import step_spec
from arbor_dunning.adapters.store import (
    Customer,
    Invoice,
    get_customer,
    last_contacted_offset,
    lock_invoice,
    policy_by_version,
    policy_for,
)
from arbor_dunning.adapters.tables import contacts, invoices, steps
from arbor_dunning.domain.calendar import local_date, next_allowed
from arbor_dunning.domain.planner import (
    TERMS_NOTICE,
    PlannedStep,
    hand_over,
    plan_invoice,
    terms_worsened,
)
from arbor_dunning.domain.policy import Policy, Step
from arbor_shared.events import ActionReason, ReminderCancelled, ReminderScheduled
from arbor_shared.events.dunning import CancelReason
from arbor_shared.kafka.outbox import Outbox

logger = logging.getLogger(__name__)


async def plan(
    session: AsyncSession,
    outbox: Outbox,
    invoice_id: str,
    now: datetime,
    *,
    force: bool = False,
) -> None:
    """Plan (or re-plan) the invoice under its customer's current policy.

    Used when an invoice is issued, when its customer's cohort or policy changes and
    when a settled invoice reopens. Without ``force`` a plan already on the current
    policy version is left alone. Steps already contacted stay done; the rest of
    the old plan is superseded; the new plan continues from its next step in the
    future beyond the last offset contacted (the hand-over rule).
    """
    invoice = await lock_invoice(session, invoice_id)
    if invoice is None or invoice.status != "open" or invoice.balance_minor <= 0:
        return
    customer = await get_customer(session, invoice.customer_id)
    if customer is None:
        # Planned when the customer's details arrive: the zone decides every date.
        return
    policy = await policy_for(session, customer.cohort)
    current = await _current_version(session, invoice_id)
    if current == policy.version and invoice.planned and not force:
        return
    old = await policy_by_version(session, current) if current else None
    await stop(session, outbox, invoice, "superseded", now, pause=False)
    fresh = plan_invoice(
        policy,
        customer_id=customer.customer_id,
        due_date=invoice.due_date,
        locale=customer.locale,
    )
    last = await last_contacted_offset(session, invoice_id)
    remaining = hand_over(fresh, now=now, last_sent_offset=last)
    for planned in remaining:
        await _add(session, outbox, invoice, customer, policy, fresh.variant, planned)
    if old and old.version != policy.version:
        await _notice_terms(session, outbox, invoice, customer, policy, old, now)
    await session.execute(
        sa.update(invoices)
        .where(invoices.c.invoice_id == invoice_id)
        .values(planned=True)
    )


async def _current_version(session: AsyncSession, invoice_id: str) -> int | None:
    version: int | None = await session.scalar(
        sa.select(steps.c.policy_version)
        .where(steps.c.invoice_id == invoice_id)
        .order_by(steps.c.id.desc())
        .limit(1)
    )
    return version


async def _add(
    session: AsyncSession,
    outbox: Outbox,
    invoice: Invoice,
    customer: Customer,
    policy: Policy,
    variant: str | None,
    planned: PlannedStep,
    *,
    changes: tuple[str, ...] = (),
) -> None:
    step = planned.step
    state = "paused" if invoice.hold else "planned"
    values = {
        "invoice_id": invoice.invoice_id,
        "customer_id": invoice.customer_id,
        "cohort": customer.cohort,
        "policy_version": policy.version,
        "variant": variant,
        "step": step.name,
        "offset_days": step.offset_days,
        "channel": step.channel,
        "template": step.template,
        "spec": {"step": step_spec(step), "changes": list(changes)},
        "due_at": planned.due_at,
        "state": state,
        "cancel_reason": None,
    }
    # A step superseded and planned again under the same version comes back to life;
    # one already done never does.
    statement = insert(steps).values(values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["invoice_id", "policy_version", "step", "channel"],
            set_={k: statement.excluded[k] for k in ("due_at", "state", "spec")}
            | {"cancel_reason": None, "cohort": customer.cohort, "variant": variant},
            where=steps.c.state.in_(("cancelled", "planned", "paused")),
        )
    )
    if step.channel != "task" and state == "planned":
        await outbox.publish(
            session,
            ReminderScheduled(
                customer_id=invoice.customer_id,
                invoice_id=invoice.invoice_id,
                step=step.name,
                channel=step.channel,
                scheduled_for=planned.due_at,
                reason=reason_for(policy, customer.cohort, variant, step.name, {}),
            ),
        )


async def _notice_terms(
    session: AsyncSession,
    outbox: Outbox,
    invoice: Invoice,
    customer: Customer,
    policy: Policy,
    old: Policy,
    now: datetime,
) -> None:
    """Tell the customer before worse terms apply (an incentive gone, a fee added)."""
    # TODO: a fee step due within days of the notice is not pushed back — a policy
    # setting for the notice period, applied to the new plan's fee steps, removes it.
    _, old_steps = old.assign(customer.customer_id)
    variant, new_steps = policy.assign(customer.customer_id)
    changes = tuple(terms_worsened(old_steps, new_steps))
    if not changes:
        return
    channel = customer.preferred_channel
    days = (local_date(now, customer.locale) - invoice.due_date).days
    notice = Step(TERMS_NOTICE, days, channel, TERMS_NOTICE)  # type: ignore[arg-type]
    moment = next_allowed(now, customer.locale, policy.rules)
    await _add(
        session,
        outbox,
        invoice,
        customer,
        policy,
        variant,
        PlannedStep(notice, moment),
        changes=changes,
    )


def reason_for(
    policy: Policy,
    cohort: str,
    variant: str | None,
    step: str,
    facts: dict[str, object],
) -> ActionReason:
    return ActionReason(
        policy_id=policy.policy_id,
        policy_version=policy.version,
        variant=variant,
        cohort=cohort,
        step=step,
        facts=facts,  # type: ignore[arg-type]
    )


async def stop(
    session: AsyncSession,
    outbox: Outbox,
    invoice: Invoice,
    reason: CancelReason,
    now: datetime,
    *,
    pause: bool,
) -> list[tuple[str, str, str | None]]:
    """Cancel (or pause) every step not yet handed over; return them.

    Each stopped step is returned as (step, channel, variant), for the metrics.
    """
    waiting = ("planned",) if pause else ("planned", "paused")
    stopped = (
        await session.execute(
            sa.update(steps)
            .where(steps.c.invoice_id == invoice.invoice_id, steps.c.state.in_(waiting))
            .values(state="paused" if pause else "cancelled", cancel_reason=reason)
            .returning(steps.c.step, steps.c.channel, steps.c.variant)
        )
    ).all()
    # A decision not yet handed to a transport is withdrawn too: it is not sent.
    withdrawn = (
        await session.execute(
            sa.update(contacts)
            .where(
                contacts.c.invoice_id == invoice.invoice_id,
                contacts.c.state == "decided",
            )
            .values(state="cancelled")
            .returning(contacts.c.step, contacts.c.policy_version, contacts.c.channel)
        )
    ).all()
    for row in withdrawn:
        await session.execute(
            sa.update(steps)
            .where(
                steps.c.invoice_id == invoice.invoice_id,
                steps.c.policy_version == row.policy_version,
                steps.c.step == row.step,
            )
            .values(state="paused" if pause else "cancelled", cancel_reason=reason)
        )
    halted = [(r.step, r.channel, r.variant) for r in stopped]
    halted += [(r.step, r.channel, None) for r in withdrawn]
    names = [step for step, _channel, _variant in halted]
    events = [
        ReminderCancelled(
            customer_id=invoice.customer_id,
            invoice_id=invoice.invoice_id,
            step=name,
            cancel_reason=reason,
            cancelled_at=now,
        )
        for name in names
    ]
    await outbox.publish_many(session, [(outbox.envelope(e), e) for e in events])
    return halted


async def resume(session: AsyncSession, outbox: Outbox, invoice: Invoice) -> int:
    """Put paused steps back on the schedule; catch-up decides what is still sent."""
    resumed = (
        await session.execute(
            sa.update(steps)
            .where(steps.c.invoice_id == invoice.invoice_id, steps.c.state == "paused")
            .values(state="planned", cancel_reason=None)
            .returning(steps)
        )
    ).all()
    for row in resumed:
        policy = await policy_by_version(session, row.policy_version)
        if row.channel == "task" or policy is None:
            continue
        await outbox.publish(
            session,
            ReminderScheduled(
                customer_id=invoice.customer_id,
                invoice_id=invoice.invoice_id,
                step=row.step,
                channel=row.channel,
                scheduled_for=row.due_at,
                reason=reason_for(policy, row.cohort, row.variant, row.step, {}),
            ),
        )
    return len(resumed)


async def plan_if_new(
    session: AsyncSession, outbox: Outbox, invoice_id: str, now: datetime
) -> None:
    """Plan the invoice unless it already has a plan."""
    planned = await session.scalar(
        sa.select(invoices.c.planned).where(invoices.c.invoice_id == invoice_id)
    )
    if planned is False:
        await plan(session, outbox, invoice_id, now)
