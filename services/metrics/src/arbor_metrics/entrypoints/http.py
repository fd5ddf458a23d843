"""Metrics' HTTP routes: KPIs for operators and other systems."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel

from arbor_metrics.adapters.tables import invoice_facts
from arbor_metrics.domain.kpis import InvoiceFact, on_time_rate
from arbor_shared.http import Runtime
from arbor_shared.money import Currency

router = APIRouter(prefix="/v1", tags=["kpis"])


class OnTimeRateRead(BaseModel):
    as_of: date
    currency: str | None
    grace_days: int
    weighting: str = "count"
    invoices_due: int
    paid_on_time: int
    on_time_rate: float | None


class KpisRead(BaseModel):
    on_time: OnTimeRateRead


@router.get("/kpis")
async def get_kpis(
    runtime: Runtime,
    as_of: Annotated[date, Query(description="Compute as of the end of this day")],
    currency: Annotated[Currency | None, Query()] = None,
    grace_days: Annotated[int, Query(ge=0, le=90)] = 0,
) -> KpisRead:
    """Collection KPIs as of a date, in one currency or all."""
    query = sa.select(invoice_facts)
    if currency:
        query = query.where(invoice_facts.c.currency == currency)
    async with runtime.sessions() as session:
        rows = (await session.execute(query)).all()
    facts = [
        InvoiceFact(
            r.invoice_id, r.currency, r.amount_minor, r.due_date, r.settled_date
        )
        for r in rows
    ]
    result = on_time_rate(facts, as_of=as_of, currency=currency, grace_days=grace_days)
    rate = result.rate
    return KpisRead(
        on_time=OnTimeRateRead(
            as_of=as_of,
            currency=currency,
            grace_days=grace_days,
            invoices_due=result.invoices_due,
            paid_on_time=result.paid_on_time,
            on_time_rate=float(rate) if rate is not None else None,
        )
    )
