"""Late fees and incentives a step carries: events for the billing system.

Dunning never edits an invoice; the system of record applies what it is told here.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_dunning.adapters.store import Customer, Invoice
from arbor_dunning.adapters.tables import fees
from arbor_dunning.domain.calendar import local_date
from arbor_dunning.domain.planner import fee_amount, fee_applies, fee_period
from arbor_dunning.domain.policy import Step
from arbor_shared.events import ActionReason, IncentiveOffered, LateFeeAssessed
from arbor_shared.kafka.outbox import Outbox


async def assess_fee(
    outbox: Outbox,
    session: AsyncSession,
    invoice: Invoice,
    customer: Customer,
    step: Step,
    reason: ActionReason,
    now: datetime,
) -> int | None:
    """Assess the step's late fee if due; return the amount, None if none."""
    fee = step.fee
    if fee is None or not fee_applies(
        fee, due_date=invoice.due_date, at=now, locale=customer.locale
    ):
        return None
    assessed = await session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(fees.c.amount_minor), 0)).where(
            fees.c.invoice_id == invoice.invoice_id
        )
    )
    amount = fee_amount(
        fee, balance_minor=invoice.balance_minor, assessed_minor=int(assessed or 0)
    )
    if amount <= 0:
        return None
    period = fee_period(now, customer.locale)
    fee_id = f"fee-{invoice.invoice_id}-{period}"
    inserted = await session.scalar(
        insert(fees)
        .values(
            invoice_id=invoice.invoice_id,
            period=period,
            fee_id=fee_id,
            amount_minor=amount,
            currency=invoice.currency,
        )
        .on_conflict_do_nothing()
        .returning(fees.c.fee_id)
    )
    if inserted is None:
        # At most one fee per invoice and period, whatever the policy says.
        return None
    await outbox.publish(
        session,
        LateFeeAssessed(
            customer_id=invoice.customer_id,
            invoice_id=invoice.invoice_id,
            fee_id=fee_id,
            currency=invoice.currency,
            amount_minor=amount,
            period=period,
            assessed_at=now,
            reason=reason,
        ),
    )
    return amount


async def offer_incentive(
    outbox: Outbox,
    session: AsyncSession,
    invoice: Invoice,
    customer: Customer,
    step: Step,
    reason: ActionReason,
    now: datetime,
) -> None:
    """Publish the step's offer for the billing system, if it has one."""
    incentive = step.incentive
    if incentive is None:
        return
    until = valid_until(step, customer, now)
    await outbox.publish(
        session,
        IncentiveOffered(
            customer_id=invoice.customer_id,
            invoice_id=invoice.invoice_id,
            kind=incentive.kind,
            percent=str(incentive.percent) if incentive.percent else None,
            valid_until=until,
            offered_at=now,
            reason=reason,
        ),
    )


def valid_until(step: Step, customer: Customer, now: datetime) -> date | None:
    if step.incentive is None or not step.incentive.valid_days:
        return None
    days = timedelta(days=step.incentive.valid_days)
    return local_date(now, customer.locale) + days
