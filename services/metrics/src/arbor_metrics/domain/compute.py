"""One KPI answer: slice the facts, take their states as of the day, apply formulas."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from arbor_metrics.domain.dunning import (
    BillingMonth,
    DunningEffect,
    billing_month_curves,
    dunning_effect,
    first_reminders,
)
from arbor_metrics.domain.errors import InvalidQueryError
from arbor_metrics.domain.facts import (
    Facts,
    Invoice,
    InvoiceState,
    Reminder,
    state_as_of,
)
from arbor_metrics.domain.kpis import (
    Aging,
    DaysToPay,
    OnTime,
    Period,
    aging,
    credit_sales,
    days_to_pay,
    on_time,
)
from arbor_metrics.domain.receivables import Receivables, month_of

CohortBasis = Literal["issued", "as_of"]
ALL_COHORTS = "all"


@dataclass(frozen=True)
class KpiQuery:
    """What to compute: one currency, one cohort slice, one day, one window."""

    as_of: date
    currency: str
    cohort: str = ALL_COHORTS
    cohort_basis: CohortBasis = "as_of"
    window_days: int | None = None
    grace_days: int = 0
    reminder_days: int = 7
    variant: str | None = None
    policy_id: str | None = None


@dataclass(frozen=True)
class Kpis:
    query: KpiQuery
    period: Period
    invoices: int
    on_time: OnTime
    days_to_pay: DaysToPay
    aging: Aging
    receivables: Receivables
    dunning: DunningEffect
    billing_months: list[BillingMonth]


def compute(facts: Facts, query: KpiQuery) -> Kpis:
    """Every KPI of ``query`` from the stored facts, exactly."""
    invoices = select_invoices(facts, query)
    period = _period(invoices, query)
    states = _states(invoices, query.as_of)
    by_id = {invoice.invoice_id: invoice for invoice in invoices}
    return Kpis(
        query=query,
        period=period,
        invoices=len(states),
        on_time=on_time(states, period, grace_days=query.grace_days),
        days_to_pay=days_to_pay(states, period),
        aging=aging(states, query.as_of),
        receivables=receivables(invoices, states, period),
        dunning=dunning_effect(
            by_id,
            facts.reminders,
            facts.promises,
            period,
            within_days=query.reminder_days,
        ),
        billing_months=billing_month_curves(
            invoices, {s.invoice_id: s for s in states}, period
        ),
    )


def select_invoices(facts: Facts, query: KpiQuery) -> list[Invoice]:
    """The invoices of the query's currency, cohort and policy variant."""
    chosen = [i for i in facts.invoices if i.currency == query.currency]
    if query.cohort != ALL_COHORTS:
        chosen = [i for i in chosen if _cohort(facts, i, query) == query.cohort]
    if query.variant is not None or query.policy_id is not None:
        first = first_reminders(facts.reminders)
        chosen = [i for i in chosen if _in_variant(first.get(i.invoice_id), query)]
    return chosen


def _cohort(facts: Facts, invoice: Invoice, query: KpiQuery) -> str:
    day = invoice.issue_date if query.cohort_basis == "issued" else query.as_of
    return facts.cohorts.cohort_on(invoice.customer_id, day)


def _in_variant(reminder: Reminder | None, query: KpiQuery) -> bool:
    if reminder is None:
        return False
    if query.policy_id is not None and reminder.policy_id != query.policy_id:
        return False
    return query.variant is None or reminder.variant == query.variant


def _period(invoices: list[Invoice], query: KpiQuery) -> Period:
    if query.window_days is not None:
        start = query.as_of - timedelta(days=query.window_days - 1)
        return Period(start, query.as_of)
    # No window: everything since the first invoice of the slice.
    first = min((i.issue_date for i in invoices), default=query.as_of)
    if first > query.as_of:
        first = query.as_of
    return Period(first, query.as_of)


def _states(invoices: list[Invoice], day: date) -> list[InvoiceState]:
    found = (state_as_of(invoice, day) for invoice in invoices)
    return [state for state in found if state is not None]


def receivables(
    invoices: list[Invoice], states: list[InvoiceState], period: Period
) -> Receivables:
    """AR at both ends of ``period`` and the credit sales in between."""
    if period.end < period.start:
        raise InvalidQueryError(f"the window ends {period.end} before {period.start}")
    before = _states(invoices, period.start - timedelta(days=1))
    ending = aging(states, period.end)
    monthly: dict[date, int] = {}
    for state in states:
        if state.issue_date in period and state.exclusion not in (
            "voided",
            "fully_credited",
        ):
            month = month_of(state.issue_date)
            monthly[month] = monthly.get(month, 0) + state.amount_minor
    return Receivables(
        period=period,
        beginning_ar_minor=aging(before, period.start - timedelta(days=1)).open_minor,
        ending_ar_minor=ending.open_minor,
        ending_current_ar_minor=ending.current_minor,
        credit_sales_minor=credit_sales(states, period),
        written_off_minor=sum(s.written_off_minor for s in states)
        - sum(s.written_off_minor for s in before),
        monthly_sales_minor=monthly,
    )
