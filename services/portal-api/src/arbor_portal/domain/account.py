"""What a customer's account looks like today: overdue days, aging, on-time record.

"Today" is the calendar date in the customer's billing time zone, because due dates are
dates in that zone (RELIABILITY, bad input): an invoice due on the 31st is not overdue
in Auckland just because it is already the 1st in UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

AGING_BUCKETS = ("current", "1_30", "31_60", "61_90", "90_plus")
FALLBACK_ZONE = "UTC"


def local_today(now: datetime, time_zone: str | None) -> date:
    """The calendar date at ``now`` in ``time_zone`` (UTC when unknown)."""
    try:
        zone = ZoneInfo(time_zone or FALLBACK_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(FALLBACK_ZONE)
    return now.astimezone(zone).date()


def days_overdue(*, due_date: date, today: date, open_balance: int) -> int:
    """Whole days past due for an invoice that still owes money, else 0."""
    if open_balance <= 0:
        return 0
    return max(0, (today - due_date).days)


def aging_bucket(days_past_due: int) -> str:
    """The aging bucket of an open balance that is ``days_past_due`` days late."""
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "1_30"
    if days_past_due <= 60:
        return "31_60"
    if days_past_due <= 90:
        return "61_90"
    return "90_plus"


@dataclass(frozen=True)
class OpenItem:
    """An invoice that still owes money, as the summary needs it."""

    currency: str
    balance_minor: int
    due_date: date


@dataclass
class CurrencyAging:
    """Open and overdue amounts of one currency, split by age."""

    currency: str
    open_minor: int = 0
    overdue_minor: int = 0
    buckets: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(AGING_BUCKETS, 0)
    )


def age_open_items(items: Iterable[OpenItem], today: date) -> list[CurrencyAging]:
    """Aging per currency; amounts of different currencies are never added."""
    by_currency: dict[str, CurrencyAging] = {}
    for item in items:
        if item.balance_minor <= 0:
            continue
        aging = by_currency.setdefault(item.currency, CurrencyAging(item.currency))
        late = days_overdue(
            due_date=item.due_date, today=today, open_balance=item.balance_minor
        )
        aging.open_minor += item.balance_minor
        aging.buckets[aging_bucket(late)] += item.balance_minor
        if late > 0:
            aging.overdue_minor += item.balance_minor
    return [by_currency[c] for c in sorted(by_currency)]


@dataclass(frozen=True)
class DueInvoice:
    """An invoice that has fallen due, for the on-time record."""

    due_date: date
    settled_date: date | None


@dataclass(frozen=True)
class OnTimeRecord:
    """Count-weighted on-time record, as defined in the product brief."""

    invoices_due: int
    paid_on_time: int

    @property
    def rate_percent(self) -> int | None:
        if self.invoices_due == 0:
            return None
        return round(100 * self.paid_on_time / self.invoices_due)


def on_time_record(invoices: Iterable[DueInvoice], today: date) -> OnTimeRecord:
    """Invoices due by ``today`` and how many were settled by their due date.

    Voided, written-off and fully credited invoices are excluded by the caller, as the
    brief's KPI definitions require; an invoice still open past due counts as late.
    """
    due = [i for i in invoices if i.due_date < today or i.settled_date is not None]
    on_time = sum(
        1 for i in due if i.settled_date is not None and i.settled_date <= i.due_date
    )
    return OnTimeRecord(invoices_due=len(due), paid_on_time=on_time)
