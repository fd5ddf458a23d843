"""Response models of the KPI API; every ratio also shows its exact integer parts."""

from __future__ import annotations

from datetime import date, datetime
from fractions import Fraction
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from arbor_metrics.domain.compute import Kpis
from arbor_metrics.domain.dunning import BillingMonth
from arbor_metrics.domain.kpis import AGING_BUCKETS

EXCLUSIONS = (
    "Voided, fully credited and written-off invoices are excluded from on-time, "
    "days to pay and billing-month curves; written-off invoices count as credit "
    "sales (DSO, CEI, bad debt) and as unpaid in dunning effectiveness. Amounts are "
    "integer minor units of the one currency named; nothing is summed across "
    "currencies."
)


def _float(value: Fraction | None) -> float | None:
    return None if value is None else float(value)


class PeriodRead(BaseModel):
    start: date
    end: date
    days: int


class OnTimeRateRead(BaseModel):
    """Invoices due in the window, and those fully settled by due date + grace."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2014-01-31",
                    "currency": "USD",
                    "grace_days": 0,
                    "weighting": "count and amount",
                    "invoices_due": 2466,
                    "paid_on_time": 1589,
                    "on_time_rate": 0.6443633414436334,
                    "amount_due_minor": 14770318,
                    "amount_paid_on_time_minor": 9374240,
                    "on_time_amount_rate": 0.6346674458870825,
                }
            ]
        }
    )

    as_of: date
    currency: str
    grace_days: int
    weighting: str = Field(
        "count and amount",
        description="on_time_rate is count-weighted, on_time_amount_rate by amount",
    )
    invoices_due: int
    paid_on_time: int
    on_time_rate: float | None
    amount_due_minor: int
    amount_paid_on_time_minor: int
    on_time_amount_rate: float | None


class DaysLateRead(BaseModel):
    total_days_late: int
    mean_days_late: float | None
    paid_late: int
    max_days_late: int | None


class DaysToPayRead(BaseModel):
    weighting: Literal["count"] = "count"
    invoices_settled: int
    total_days: int
    mean_days: float | None
    median_days: float | None
    p90_days: int | None = Field(description="nearest-rank 90th percentile")
    days_late: DaysLateRead


class AgingBucketRead(BaseModel):
    bucket: str
    amount_minor: int
    invoices: int


class AgingRead(BaseModel):
    as_of: date
    weighting: Literal["amount"] = "amount"
    buckets: list[AgingBucketRead]
    open_ar_minor: int
    current_ar_minor: int
    overdue_ar_minor: int


class ReceivablesRead(BaseModel):
    weighting: Literal["amount"] = "amount"
    beginning_ar_minor: int
    ending_ar_minor: int
    ending_current_ar_minor: int
    credit_sales_minor: int
    written_off_minor: int
    dso_days: float | None
    countback_dso_days: float | None
    best_possible_dso_days: float | None
    add_days: float | None
    cei_percent: float | None
    bad_debt_ratio: float | None


class DunningRead(BaseModel):
    within_days: int
    reminded_invoices: int
    paid_within: int
    paid_within_rate: float | None
    entered_minor: int
    recovered_minor: int
    recovery_rate: float | None
    promises_due: int
    promises_kept: int
    promises_broken: int
    promise_kept_rate: float | None


class BillingMonthRead(BaseModel):
    month: str = Field(examples=["2013-01"])
    invoices: int
    invoiced_minor: int
    paid_within_minor: dict[str, int]
    paid_within_share: dict[str, float | None]


class KpisRead(BaseModel):
    as_of: date
    currency: str
    cohort: str
    cohort_basis: str
    variant: str | None
    policy_id: str | None
    period: PeriodRead
    invoices: int
    exclusions: str = EXCLUSIONS
    on_time: OnTimeRateRead
    days_to_pay: DaysToPayRead
    aging: AgingRead
    receivables: ReceivablesRead
    dunning: DunningRead
    billing_months: list[BillingMonthRead]


class SeriesRead(BaseModel):
    step: Literal["day", "month"]
    points: list[KpisRead]


class MembershipRead(BaseModel):
    cohort: str
    valid_from: datetime
    valid_to: datetime | None


class MembershipHistoryRead(BaseModel):
    customer_id: str
    memberships: list[MembershipRead]


def render(kpis: Kpis) -> KpisRead:
    """The API view of one computed answer."""
    query = kpis.query
    return KpisRead(
        as_of=query.as_of,
        currency=query.currency,
        cohort=query.cohort,
        cohort_basis=query.cohort_basis,
        variant=query.variant,
        policy_id=query.policy_id,
        period=PeriodRead(
            start=kpis.period.start, end=kpis.period.end, days=kpis.period.days
        ),
        invoices=kpis.invoices,
        on_time=_on_time(kpis),
        days_to_pay=_days_to_pay(kpis),
        aging=_aging(kpis),
        receivables=_receivables(kpis),
        dunning=_dunning(kpis),
        billing_months=[_month(m) for m in kpis.billing_months],
    )


def _on_time(kpis: Kpis) -> OnTimeRateRead:
    found = kpis.on_time
    return OnTimeRateRead(
        as_of=kpis.query.as_of,
        currency=kpis.query.currency,
        grace_days=found.grace_days,
        invoices_due=found.invoices_due,
        paid_on_time=found.paid_on_time,
        on_time_rate=_float(found.rate),
        amount_due_minor=found.amount_due_minor,
        amount_paid_on_time_minor=found.amount_paid_on_time_minor,
        on_time_amount_rate=_float(found.amount_rate),
    )


def _days_to_pay(kpis: Kpis) -> DaysToPayRead:
    found = kpis.days_to_pay
    return DaysToPayRead(
        invoices_settled=found.invoices_settled,
        total_days=found.total_days,
        mean_days=_float(found.mean_days),
        median_days=_float(found.median_days),
        p90_days=found.p90_days,
        days_late=DaysLateRead(
            total_days_late=found.total_days_late,
            mean_days_late=_float(found.mean_days_late),
            paid_late=found.paid_late,
            max_days_late=found.max_days_late,
        ),
    )


def _aging(kpis: Kpis) -> AgingRead:
    found = kpis.aging
    return AgingRead(
        as_of=kpis.query.as_of,
        buckets=[
            AgingBucketRead(
                bucket=name,
                amount_minor=found.buckets_minor[name],
                invoices=found.buckets_count[name],
            )
            for name in AGING_BUCKETS
        ],
        open_ar_minor=found.open_minor,
        current_ar_minor=found.current_minor,
        overdue_ar_minor=found.overdue_minor,
    )


def _receivables(kpis: Kpis) -> ReceivablesRead:
    found = kpis.receivables
    return ReceivablesRead(
        beginning_ar_minor=found.beginning_ar_minor,
        ending_ar_minor=found.ending_ar_minor,
        ending_current_ar_minor=found.ending_current_ar_minor,
        credit_sales_minor=found.credit_sales_minor,
        written_off_minor=found.written_off_minor,
        dso_days=_float(found.dso),
        countback_dso_days=_float(found.countback_dso),
        best_possible_dso_days=_float(found.best_possible_dso),
        add_days=_float(found.add),
        cei_percent=_float(found.cei_percent),
        bad_debt_ratio=_float(found.bad_debt_ratio),
    )


def _dunning(kpis: Kpis) -> DunningRead:
    found = kpis.dunning
    return DunningRead(
        within_days=found.within_days,
        reminded_invoices=found.reminded_invoices,
        paid_within=found.paid_within,
        paid_within_rate=_float(found.paid_within_rate),
        entered_minor=found.entered_minor,
        recovered_minor=found.recovered_minor,
        recovery_rate=_float(found.recovery_rate),
        promises_due=found.promises_due,
        promises_kept=found.promises_kept,
        promises_broken=found.promises_broken,
        promise_kept_rate=_float(found.promise_kept_rate),
    )


def _month(month: BillingMonth) -> BillingMonthRead:
    invoiced = month.invoiced_minor
    return BillingMonthRead(
        month=month.month.strftime("%Y-%m"),
        invoices=month.invoices,
        invoiced_minor=invoiced,
        paid_within_minor={str(d): v for d, v in month.paid_within_minor.items()},
        paid_within_share={
            str(d): (v / invoiced if invoiced else None)
            for d, v in month.paid_within_minor.items()
        },
    )
