"""KPI formulas over invoice states (BRIEF.md); pure, exact, integer-based.

Every ratio is kept as its integer numerator and denominator (or a ``Fraction``) so
that it is exact; a float appears only when the API renders it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

from arbor_metrics.domain.facts import InvoiceState

AGING_BUCKETS = ("current", "1_30", "31_60", "61_90", "90_plus")


@dataclass(frozen=True)
class Period:
    """The window a KPI looks at: ``start`` to ``end``, both days included."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


def ratio(numerator: int, denominator: int) -> Fraction | None:
    return None if denominator == 0 else Fraction(numerator, denominator)


@dataclass(frozen=True)
class OnTime:
    """Invoices that fell due in the period, and those fully settled in time."""

    grace_days: int
    invoices_due: int
    paid_on_time: int
    amount_due_minor: int
    amount_paid_on_time_minor: int

    @property
    def rate(self) -> Fraction | None:
        return ratio(self.paid_on_time, self.invoices_due)

    @property
    def amount_rate(self) -> Fraction | None:
        return ratio(self.amount_paid_on_time_minor, self.amount_due_minor)


def on_time(
    states: Sequence[InvoiceState], period: Period, *, grace_days: int
) -> OnTime:
    """On-time rate; an invoice still open past due counts as late."""
    grace = timedelta(days=grace_days)
    due = [s for s in states if s.due_date in period and s.exclusion is None]
    in_time = [
        s
        for s in due
        if s.settled_date is not None and s.settled_date <= s.due_date + grace
    ]
    return OnTime(
        grace_days=grace_days,
        invoices_due=len(due),
        paid_on_time=len(in_time),
        amount_due_minor=sum(s.amount_minor for s in due),
        amount_paid_on_time_minor=sum(s.amount_minor for s in in_time),
    )


@dataclass(frozen=True)
class DaysToPay:
    """Issue-to-settlement and due-to-settlement days of invoices settled in it."""

    invoices_settled: int
    total_days: int
    median_days: Fraction | None
    p90_days: int | None
    total_days_late: int
    paid_late: int
    max_days_late: int | None

    @property
    def mean_days(self) -> Fraction | None:
        return ratio(self.total_days, self.invoices_settled)

    @property
    def mean_days_late(self) -> Fraction | None:
        return ratio(self.total_days_late, self.invoices_settled)


def days_to_pay(states: Sequence[InvoiceState], period: Period) -> DaysToPay:
    """Mean, median and nearest-rank p90 of settled - issued; days late alongside."""
    settled = [
        s
        for s in states
        if s.settled_date is not None
        and s.settled_date in period
        and s.exclusion is None
    ]
    days = sorted(
        (s.settled_date - s.issue_date).days for s in settled if s.settled_date
    )
    late = [
        max(0, (s.settled_date - s.due_date).days) for s in settled if s.settled_date
    ]
    return DaysToPay(
        invoices_settled=len(days),
        total_days=sum(days),
        median_days=_median(days),
        p90_days=_nearest_rank(days, 90),
        total_days_late=sum(late),
        paid_late=sum(1 for d in late if d > 0),
        max_days_late=max(late, default=None),
    )


def _median(values: Sequence[int]) -> Fraction | None:
    if not values:
        return None
    middle = len(values) // 2
    if len(values) % 2:
        return Fraction(values[middle])
    return Fraction(values[middle - 1] + values[middle], 2)


def _nearest_rank(values: Sequence[int], percent: int) -> int | None:
    """The smallest value with at least ``percent`` % of values at or below it."""
    if not values:
        return None
    rank = math.ceil(percent * len(values) / 100)
    return values[max(rank, 1) - 1]


@dataclass(frozen=True)
class Aging:
    """The open balance on one day by days past due; counts alongside amounts."""

    buckets_minor: dict[str, int]
    buckets_count: dict[str, int]

    @property
    def open_minor(self) -> int:
        return sum(self.buckets_minor.values())

    @property
    def current_minor(self) -> int:
        return self.buckets_minor["current"]

    @property
    def overdue_minor(self) -> int:
        return self.open_minor - self.current_minor


def bucket(days_past_due: int) -> str:
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "1_30"
    if days_past_due <= 60:
        return "31_60"
    if days_past_due <= 90:
        return "61_90"
    return "90_plus"


def aging(states: Sequence[InvoiceState], day: date) -> Aging:
    """Open AR on ``day`` by days past due; ``states`` must be as of ``day``."""
    amounts = dict.fromkeys(AGING_BUCKETS, 0)
    counts = dict.fromkeys(AGING_BUCKETS, 0)
    for state in states:
        # A voided or written-off invoice owes nothing; what a partial write-off
        # leaves open is still receivable.
        if state.open_minor == 0 or state.status in ("voided", "written_off"):
            continue
        name = bucket((day - state.due_date).days)
        amounts[name] += state.open_minor
        counts[name] += 1
    return Aging(amounts, counts)


def credit_sales(states: Sequence[InvoiceState], period: Period) -> int:
    """Invoiced in the period; written-off invoices were sales, voided ones not."""
    return sum(
        s.amount_minor
        for s in states
        if s.issue_date in period and s.exclusion not in ("voided", "fully_credited")
    )
