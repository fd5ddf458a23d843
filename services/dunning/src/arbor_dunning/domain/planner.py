"""Planning a policy's steps for one invoice, hand-over, catch-up and fees.

The scheduler and the simulator both use these functions, so a back-test shows
exactly what the running service would have done.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from arbor_dunning.domain.calendar import Locale, local_date, step_instant
from arbor_dunning.domain.policy import CatchUp, Fee, Policy, Step
from arbor_shared.money import round_minor

TERMS_NOTICE = "terms_notice"
# Under ``skip_missed`` a step more than this late is dropped instead of sent.
MISSED_AFTER = timedelta(hours=24)


@dataclass(frozen=True)
class PlannedStep:
    step: Step
    due_at: datetime


@dataclass(frozen=True)
class Plan:
    policy: Policy
    variant: str | None
    steps: tuple[PlannedStep, ...]


def plan_invoice(
    policy: Policy, *, customer_id: str, due_date: date, locale: Locale
) -> Plan:
    """Every step of the customer's variant with the instant it falls due."""
    variant, steps = policy.assign(customer_id)
    planned = tuple(
        PlannedStep(s, step_instant(due_date, s.offset_days, locale, policy.rules))
        for s in steps
    )
    return Plan(policy, variant, planned)


def hand_over(
    plan: Plan, *, now: datetime, last_sent_offset: int | None
) -> tuple[PlannedStep, ...]:
    """The new policy's steps a customer still gets after changing policy mid-way.

    The rule: steps already sent stay sent; the new policy continues from its next
    step that is still in the future and lies beyond the last offset already sent,
    so no one is told the same thing twice or reminded of a past date.
    """
    return tuple(
        p
        for p in plan.steps
        if p.due_at > now
        and (last_sent_offset is None or p.step.offset_days > last_sent_offset)
    )


def terms_worsened(old: Sequence[Step], new: Sequence[Step]) -> list[str]:
    """What the customer loses in the change: incentives removed, fees added."""
    old_incentives = {s.incentive.kind for s in old if s.incentive}
    new_incentives = {s.incentive.kind for s in new if s.incentive}
    changes = [
        f"incentive_removed:{k}" for k in sorted(old_incentives - new_incentives)
    ]
    if any(s.fee for s in new) and not any(s.fee for s in old):
        changes.append("fee_added")
    return changes


@dataclass(frozen=True)
class DueStep:
    key: int
    offset_days: int
    due_at: datetime


def triage_due(
    due: Sequence[DueStep], *, now: datetime, catch_up: CatchUp
) -> tuple[DueStep | None, list[DueStep]]:
    """Split one invoice's due steps into the one to send and those missed.

    After an outage several steps can be due at once; sending them all would be a
    burst of stale reminders. ``latest_only`` sends the most recent and cancels the
    older ones; ``skip_missed`` also drops the most recent if it is a day late.
    """
    if not due:
        return None, []
    ordered = sorted(due, key=lambda d: (d.offset_days, d.due_at))
    latest, missed = ordered[-1], ordered[:-1]
    if catch_up == "skip_missed" and now - latest.due_at > MISSED_AFTER:
        return None, ordered
    return latest, missed


def fee_amount(fee: Fee, *, balance_minor: int, assessed_minor: int) -> int:
    """The fee to assess now, after the per-invoice cap; 0 means none."""
    if fee.fixed_minor is not None:
        amount = fee.fixed_minor
    else:
        assert fee.percent is not None
        amount = round_minor(Decimal(balance_minor) * fee.percent / 100)
    if fee.cap_minor is not None:
        amount = min(amount, fee.cap_minor - assessed_minor)
    return max(amount, 0)


def fee_applies(fee: Fee, *, due_date: date, at: datetime, locale: Locale) -> bool:
    """True once the grace period after the due date is over, locally."""
    return local_date(at, locale) > due_date + timedelta(days=fee.grace_days)


def fee_period(at: datetime, locale: Locale) -> str:
    """The period a fee belongs to (one per invoice and period): the local month."""
    return local_date(at, locale).strftime("%Y-%m")
