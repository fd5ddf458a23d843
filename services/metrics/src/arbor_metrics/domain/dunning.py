"""Dunning effectiveness and billing-month curves: how collection actions pay off."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

from arbor_metrics.domain.facts import (
    Invoice,
    InvoiceState,
    Promise,
    Reminder,
    state_as_of,
)
from arbor_metrics.domain.kpis import Period, ratio
from arbor_metrics.domain.receivables import month_of

CURVE_DAYS = (0, 30, 60, 90)


@dataclass(frozen=True)
class DunningEffect:
    """Invoices whose first reminder fell in the period, and what they paid after."""

    within_days: int
    reminded_invoices: int
    paid_within: int
    entered_minor: int
    recovered_minor: int
    promises_due: int
    promises_kept: int
    promises_broken: int

    @property
    def paid_within_rate(self) -> Fraction | None:
        return ratio(self.paid_within, self.reminded_invoices)

    @property
    def recovery_rate(self) -> Fraction | None:
        return ratio(self.recovered_minor, self.entered_minor)

    @property
    def promise_kept_rate(self) -> Fraction | None:
        return ratio(self.promises_kept, self.promises_kept + self.promises_broken)


def first_reminders(reminders: Sequence[Reminder]) -> dict[str, Reminder]:
    """The reminder that put each invoice into dunning."""
    first: dict[str, Reminder] = {}
    for reminder in sorted(reminders, key=lambda r: (r.sent_at, r.step)):
        first.setdefault(reminder.invoice_id, reminder)
    return first


def dunning_effect(
    invoices: Mapping[str, Invoice],
    reminders: Sequence[Reminder],
    promises: Sequence[Promise],
    period: Period,
    *,
    within_days: int,
) -> DunningEffect:
    """Paid within N days of the first reminder; recovered ÷ entered; promises kept."""
    reminded = paid = entered = recovered = 0
    for invoice_id, first in first_reminders(reminders).items():
        invoice = invoices.get(invoice_id)
        entry = first.sent_at.date()
        if invoice is None or entry not in period:
            continue
        now = state_as_of(invoice, period.end)
        before = state_as_of(invoice, entry - timedelta(days=1))
        if now is None or now.exclusion in ("voided", "fully_credited"):
            continue
        reminded += 1
        settled = now.settled_date
        if settled and entry <= settled <= entry + timedelta(days=within_days):
            paid += now.exclusion is None
        entered += first.balance_minor
        paid_after = now.paid_minor - (before.paid_minor if before else 0)
        recovered += min(first.balance_minor, max(paid_after, 0))
    kept, broken, due = _promises(invoices, promises, period)
    return DunningEffect(
        within_days, reminded, paid, entered, recovered, due, kept, broken
    )


def _promises(
    invoices: Mapping[str, Invoice], promises: Sequence[Promise], period: Period
) -> tuple[int, int, int]:
    kept = broken = due = 0
    for promise in promises:
        promised = promise.promised_date
        if promise.invoice_id not in invoices or promised not in period:
            continue
        due += 1
        if promise.kept_on is not None and promise.kept_on <= period.end:
            kept += 1
        elif promise.broken_on is not None and promise.broken_on <= period.end:
            broken += 1
    return kept, broken, due


@dataclass(frozen=True)
class BillingMonth:
    """One issue month: invoiced amount and the part paid within 0/30/60/90 days."""

    month: date
    invoices: int
    invoiced_minor: int
    paid_within_minor: dict[int, int]


def billing_month_curves(
    invoices: Sequence[Invoice], finals: Mapping[str, InvoiceState], period: Period
) -> list[BillingMonth]:
    """Per issue month in the period; a payment counts once it happened by ``end``.

    ``finals`` are the invoices' states at the period's end.
    """
    totals: dict[date, list[int]] = {}
    for invoice in invoices:
        final = finals.get(invoice.invoice_id)
        if final is None or invoice.issue_date not in period or final.exclusion:
            continue
        row = totals.setdefault(
            month_of(invoice.issue_date), [0] * (2 + len(CURVE_DAYS))
        )
        row[0] += 1
        row[1] += final.amount_minor
        for index, paid in enumerate(_paid_at_horizons(invoice, period.end)):
            row[2 + index] += paid
    return [
        BillingMonth(month, row[0], row[1], dict(zip(CURVE_DAYS, row[2:], strict=True)))
        for month, row in sorted(totals.items())
    ]


def _paid_at_horizons(invoice: Invoice, end: date) -> list[int]:
    """Paid by issue + 0/30/60/90 days (never past ``end``), in one pass."""
    horizons = [min(invoice.issue_date + timedelta(days), end) for days in CURVE_DAYS]
    paid = [0] * len(horizons)
    for snapshot in invoice.snapshots:
        if snapshot.paid_minor is None:
            continue
        for index, horizon in enumerate(horizons):
            if snapshot.effective <= horizon:
                paid[index] = snapshot.paid_minor
    return paid
