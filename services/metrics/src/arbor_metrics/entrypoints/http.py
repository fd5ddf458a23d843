"""Metrics' HTTP routes: KPIs for operators and other systems.

KPIs are computed at read time from the stored per-invoice facts as of the asked day,
so any past day is answered exactly, with no snapshot job to miss a day or drift.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from arbor_metrics.adapters.repository import FactsCache, load_cohorts
from arbor_metrics.config import MetricsSettings
from arbor_metrics.domain.compute import KpiQuery, compute
from arbor_metrics.domain.errors import InvalidQueryError
from arbor_metrics.domain.facts import Facts
from arbor_metrics.domain.receivables import month_end
from arbor_metrics.entrypoints.schemas import (
    KpisRead,
    MembershipHistoryRead,
    MembershipRead,
    SeriesRead,
    render,
)
from arbor_shared.auth import Operator
from arbor_shared.http import Runtime
from arbor_shared.money import Currency

router = APIRouter(prefix="/v1", tags=["kpis"])

MAX_SERIES_POINTS = 366

AsOf = Annotated[
    date,
    Query(
        description="Compute as of the end of this day",
        examples=["2013-06-30"],
    ),
]
CurrencyParam = Annotated[
    Currency,
    Query(
        description="ISO 4217; amounts are never summed across currencies",
        examples=["USD"],
    ),
]
Cohort = Annotated[
    str,
    Query(
        min_length=1,
        max_length=64,
        description="A cohort name, 'unassigned', or 'all' for every customer",
        examples=["punctual"],
    ),
]
CohortBasis = Annotated[
    Literal["issued", "as_of"],
    Query(
        description="Count an invoice under its customer's cohort on the issue day "
        "('issued') or on the as-of day ('as_of')"
    ),
]
WindowDays = Annotated[
    int | None,
    Query(
        ge=1,
        le=3660,
        description="Days ending on as_of the window KPIs look at; "
        "omitted: since the slice's first invoice",
        examples=[90],
    ),
]
GraceDays = Annotated[int | None, Query(ge=0, le=90)]
ReminderDays = Annotated[
    int, Query(ge=0, le=365, description="N in 'paid within N days of a reminder'")
]
Variant = Annotated[str | None, Query(min_length=1, max_length=64)]


def _facts_cache(request: Request) -> FactsCache:
    cache: FactsCache = request.app.state.facts_cache
    return cache


Cache = Annotated[FactsCache, Depends(_facts_cache)]


def _settings(runtime: Runtime) -> MetricsSettings:
    settings = runtime.settings
    assert isinstance(settings, MetricsSettings)
    return settings


@router.get("/kpis")
async def get_kpis(
    runtime: Runtime,
    cache: Cache,
    _operator: Operator,
    as_of: AsOf,
    currency: CurrencyParam,
    cohort: Cohort = "all",
    cohort_basis: CohortBasis = "as_of",
    window_days: WindowDays = None,
    grace_days: GraceDays = None,
    reminder_days: ReminderDays = 7,
    variant: Variant = None,
    policy_id: Variant = None,
) -> KpisRead:
    """Collection KPIs of one currency and cohort slice, as of the end of a day."""
    query = KpiQuery(
        as_of=as_of,
        currency=currency,
        cohort=cohort,
        cohort_basis=cohort_basis,
        window_days=window_days,
        grace_days=_settings(runtime).grace_days if grace_days is None else grace_days,
        reminder_days=reminder_days,
        variant=variant,
        policy_id=policy_id,
    )
    async with runtime.sessions() as session, session.begin():
        facts = await cache.get(session, currency=currency)
    return await asyncio.to_thread(lambda: render(compute(facts, query)))


@router.get("/kpis/series")
async def get_kpi_series(
    runtime: Runtime,
    cache: Cache,
    _operator: Operator,
    from_: Annotated[date, Query(alias="from", examples=["2013-01-01"])],
    to: Annotated[date, Query(examples=["2013-12-31"])],
    currency: CurrencyParam,
    step: Annotated[Literal["day", "month"], Query()] = "month",
    cohort: Cohort = "all",
    cohort_basis: CohortBasis = "as_of",
    window_days: WindowDays = None,
    grace_days: GraceDays = None,
    reminder_days: ReminderDays = 7,
    variant: Variant = None,
    policy_id: Variant = None,
) -> SeriesRead:
    """The same KPIs at each day or month end from ``from`` to ``to``."""
    days = series_days(from_, to, step)
    template = KpiQuery(
        as_of=to,
        currency=currency,
        cohort=cohort,
        cohort_basis=cohort_basis,
        window_days=window_days,
        grace_days=_settings(runtime).grace_days if grace_days is None else grace_days,
        reminder_days=reminder_days,
        variant=variant,
        policy_id=policy_id,
    )
    async with runtime.sessions() as session, session.begin():
        facts = await cache.get(session, currency=currency)
    points = await asyncio.to_thread(_series, facts, template, days)
    return SeriesRead(step=step, points=points)


def _series(facts: Facts, template: KpiQuery, days: list[date]) -> list[KpisRead]:
    return [render(compute(facts, replace(template, as_of=day))) for day in days]


def series_days(start: date, end: date, step: str) -> list[date]:
    """Every day, or every month end (and ``end`` itself), from ``start`` to ``end``."""
    if end < start:
        raise InvalidQueryError(f"'to' ({end}) is before 'from' ({start})")
    days: list[date] = []
    day = start if step == "day" else month_end(start)
    while day <= end and len(days) <= MAX_SERIES_POINTS:
        days.append(day)
        day = (
            day + timedelta(days=1) if step == "day" else month_end(day + timedelta(1))
        )
    if step == "month" and (not days or days[-1] != end):
        days.append(end)
    if len(days) > MAX_SERIES_POINTS:
        raise InvalidQueryError(
            f"the series has more than {MAX_SERIES_POINTS} points; use a coarser step"
        )
    return days


@router.get("/cohorts/memberships/{customer_id}")
async def get_membership_history(
    runtime: Runtime, _operator: Operator, customer_id: str
) -> MembershipHistoryRead:
    """A customer's cohort membership history: each cohort from when to when."""
    async with runtime.sessions() as session, session.begin():
        history = await load_cohorts(session, customer_id=customer_id)
    return MembershipHistoryRead(
        customer_id=customer_id,
        memberships=[
            MembershipRead(cohort=cohort, valid_from=start, valid_to=end)
            for cohort, start, end in history.intervals(customer_id)
        ],
    )
