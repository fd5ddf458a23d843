"""KPI formulas over invoice facts (see BRIEF.md); pure, exact, integer-based."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction


@dataclass(frozen=True)
class InvoiceFact:
    invoice_id: str
    currency: str
    amount_minor: int
    due_date: date
    settled_date: date | None


@dataclass(frozen=True)
class OnTimeRate:
    """Invoices that fell due by ``as_of``, and how many were settled in time."""

    as_of: date
    currency: str | None
    grace_days: int
    invoices_due: int
    paid_on_time: int

    @property
    def rate(self) -> Fraction | None:
        if self.invoices_due == 0:
            return None
        return Fraction(self.paid_on_time, self.invoices_due)


def on_time_rate(
    facts: list[InvoiceFact], *, as_of: date, currency: str | None, grace_days: int = 0
) -> OnTimeRate:
    """Count-weighted on-time rate; an invoice still open past due counts as late."""
    grace = timedelta(days=grace_days)
    due = [f for f in facts if f.due_date <= as_of]
    on_time = [
        f
        for f in due
        if f.settled_date is not None
        and f.settled_date <= as_of
        and f.settled_date <= f.due_date + grace
    ]
    return OnTimeRate(as_of, currency, grace_days, len(due), len(on_time))
