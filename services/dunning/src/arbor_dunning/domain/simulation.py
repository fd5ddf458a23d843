"""Back-testing: what a policy would have done to past invoices, sending nothing.

The same planner, calendar and contact rules as the running service decide every
instant; only the facts come from the past instead of the topics.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from arbor_dunning.domain.calendar import Locale, after_weekly_cap
from arbor_dunning.domain.planner import (
    fee_amount,
    fee_applies,
    fee_period,
    plan_invoice,
)
from arbor_dunning.domain.policy import Policy, Step


@dataclass(frozen=True)
class PastInvoice:
    customer_id: str
    invoice_id: str
    currency: str
    amount_minor: int
    due_date: date
    settled_at: datetime | None
    locale: Locale


@dataclass(frozen=True)
class SimulatedAction:
    customer_id: str
    invoice_id: str
    step: str
    channel: str
    send_at: datetime
    variant: str | None
    fee_minor: int | None
    incentive: str | None


def simulate(
    policy: Policy, invoices: Iterable[PastInvoice], *, until: datetime
) -> list[SimulatedAction]:
    """Every action the policy would have taken up to ``until``, in time order."""
    queue: list[tuple[datetime, int, PastInvoice, Step, str | None]] = []
    for n, invoice in enumerate(invoices):
        plan = plan_invoice(
            policy,
            customer_id=invoice.customer_id,
            due_date=invoice.due_date,
            locale=invoice.locale,
        )
        for i, planned in enumerate(plan.steps):
            entry = (planned.due_at, n * 100 + i, invoice, planned.step, plan.variant)
            heapq.heappush(queue, entry)
    return _replay(policy, queue, until)


def _replay(
    policy: Policy,
    queue: list[tuple[datetime, int, PastInvoice, Step, str | None]],
    until: datetime,
) -> list[SimulatedAction]:
    contacts: dict[str, list[datetime]] = defaultdict(list)
    fees: dict[str, int] = defaultdict(int)
    periods: set[tuple[str, str]] = set()
    actions: list[SimulatedAction] = []
    while queue:
        at, order, invoice, step, variant = heapq.heappop(queue)
        if at > until or (invoice.settled_at and invoice.settled_at <= at):
            continue
        if step.channel != "task":
            allowed = after_weekly_cap(
                at, contacts[invoice.customer_id], invoice.locale, policy.rules
            )
            if allowed > at:
                heapq.heappush(queue, (allowed, order, invoice, step, variant))
                continue
            contacts[invoice.customer_id].append(at)
        fee = _fee(step, invoice, at, fees, periods)
        incentive = step.incentive.kind if step.incentive else None
        actions.append(
            SimulatedAction(
                invoice.customer_id,
                invoice.invoice_id,
                step.name,
                step.channel,
                at,
                variant,
                fee,
                incentive,
            )
        )
    return actions


def _fee(
    step: Step,
    invoice: PastInvoice,
    at: datetime,
    fees: dict[str, int],
    periods: set[tuple[str, str]],
) -> int | None:
    if step.fee is None or not fee_applies(
        step.fee, due_date=invoice.due_date, at=at, locale=invoice.locale
    ):
        return None
    period = (invoice.invoice_id, fee_period(at, invoice.locale))
    amount = fee_amount(
        step.fee,
        balance_minor=invoice.amount_minor,
        assessed_minor=fees[invoice.invoice_id],
    )
    if period in periods or amount <= 0:
        return None
    periods.add(period)
    fees[invoice.invoice_id] += amount
    return amount
