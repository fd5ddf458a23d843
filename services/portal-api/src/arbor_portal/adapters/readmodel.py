"""Queries over the read model; every one takes the caller's customer id first."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from arbor_portal.adapters.tables import (
    balances,
    customers,
    disputes,
    dunning_actions,
    identities,
    invoices,
    payment_plans,
    promises,
    transactions,
)

Row = sa.RowMapping


@dataclass(frozen=True)
class InvoiceFilter:
    status: str | None = None
    issued_from: date | None = None
    issued_to: date | None = None
    overdue_before: date | None = None


Db = AsyncSession | AsyncConnection
"""Where a query runs: a read request's connection or an action's session."""


def reading(engine: AsyncEngine) -> AsyncEngine:
    """The engine for requests that only read: each statement commits on its own.

    At READ COMMITTED every statement already sees its own snapshot, so wrapping a
    read-only request in a transaction adds only the BEGIN and ROLLBACK round trips.
    """
    return engine.execution_options(isolation_level="AUTOCOMMIT")


# Statements built once with bind parameters: SQLAlchemy then finds the compiled
# form from the statement it memoised instead of building and keying a new one for
# every request. ``readpool`` compiles the same ones for asyncpg.
ACCOUNT_FOR_SUBJECT = (
    sa.select(identities.c.customer_id, customers.c.time_zone)
    .select_from(identities)
    .outerjoin(customers, customers.c.customer_id == identities.c.customer_id)
    .where(identities.c.subject == sa.bindparam("subject"))
)


async def account_for_subject(db: Db, subject: str) -> tuple[str, str | None] | None:
    """The customer a token subject is linked to and its time zone, in one trip."""
    result = await db.execute(ACCOUNT_FOR_SUBJECT, {"subject": subject})
    row = result.first()
    return (row.customer_id, row.time_zone) if row is not None else None


async def customer_for_subject(db: Db, subject: str) -> str | None:
    """The customer a token subject is linked to, if any."""
    query = sa.select(identities.c.customer_id).where(identities.c.subject == subject)
    return await db.scalar(query)


async def get_customer(db: Db, customer_id: str) -> Row | None:
    query = sa.select(customers).where(customers.c.customer_id == customer_id)
    return (await db.execute(query)).mappings().first()


async def time_zone_of(db: Db, customer_id: str) -> str | None:
    query = sa.select(customers.c.time_zone).where(
        customers.c.customer_id == customer_id
    )
    return await db.scalar(query)


async def get_invoice(
    db: Db, customer_id: str, invoice_id: str, *, lock: bool = False
) -> Row | None:
    """One invoice of the customer; ``lock`` serialises actions on it."""
    query = sa.select(invoices).where(
        invoices.c.customer_id == customer_id, invoices.c.invoice_id == invoice_id
    )
    if lock:
        query = query.with_for_update()
    return (await db.execute(query)).mappings().first()


def page_shape(where: InvoiceFilter, after: tuple[date, str] | None) -> dict[str, bool]:
    """Which of the invoice page's optional conditions a request needs."""
    return {
        "has_status": where.status is not None,
        "overdue": where.overdue_before is not None,
        "has_from": where.issued_from is not None,
        "has_to": where.issued_to is not None,
        "has_after": after is not None,
    }


def page_values(
    customer_id: str,
    *,
    where: InvoiceFilter,
    after: tuple[date, str] | None,
    limit: int,
) -> dict[str, Any]:
    """The invoice page's bind parameters."""
    return {
        "customer_id": customer_id,
        "status": where.status,
        "overdue_before": where.overdue_before,
        "issued_from": where.issued_from,
        "issued_to": where.issued_to,
        "after_date": after[0] if after else None,
        "after_id": after[1] if after else None,
        "limit": limit,
    }


# A list shows no invoice lines, so their JSON is neither sent nor decoded.
_SUMMARY_COLUMNS = (
    invoices.c.invoice_id,
    invoices.c.number,
    invoices.c.currency,
    invoices.c.amount_minor,
    invoices.c.balance_minor,
    invoices.c.status,
    invoices.c.issue_date,
    invoices.c.due_date,
    invoices.c.settled_date,
)


@functools.cache
def invoice_page_statement(
    *, has_status: bool, overdue: bool, has_from: bool, has_to: bool, has_after: bool
) -> sa.Select[*tuple[Any, ...]]:
    # One statement per combination of filters (at most 32), each built once.
    query = sa.select(*_SUMMARY_COLUMNS).where(
        invoices.c.customer_id == sa.bindparam("customer_id")
    )
    if has_status:
        query = query.where(invoices.c.status == sa.bindparam("status"))
    if overdue:
        query = query.where(
            invoices.c.status == "open",
            invoices.c.due_date < sa.bindparam("overdue_before", type_=sa.Date),
            sa.func.coalesce(invoices.c.balance_minor, invoices.c.amount_minor) > 0,
        )
    if has_from:
        query = query.where(
            invoices.c.issue_date >= sa.bindparam("issued_from", type_=sa.Date)
        )
    if has_to:
        query = query.where(
            invoices.c.issue_date <= sa.bindparam("issued_to", type_=sa.Date)
        )
    if has_after:
        key = sa.tuple_(invoices.c.issue_date, invoices.c.invoice_id)
        after = sa.tuple_(
            sa.bindparam("after_date", type_=sa.Date),
            sa.bindparam("after_id", type_=sa.Text),
        )
        query = query.where(key < after)
    order = (invoices.c.issue_date.desc(), invoices.c.invoice_id.desc())
    return query.order_by(*order).limit(sa.bindparam("limit", type_=sa.Integer))


async def invoice_activity(
    db: Db, customer_id: str, invoice_id: str
) -> dict[str, Sequence[Row]]:
    """Dunning actions, cases and allocated money of one invoice."""
    mine = {"customer_id": customer_id, "invoice_id": invoice_id}
    result: dict[str, Sequence[Row]] = {}
    for name, table, order in (
        (
            "dunning",
            dunning_actions,
            sa.func.coalesce(
                dunning_actions.c.planned_for, dunning_actions.c.occurred_at
            ),
        ),
        ("disputes", disputes, disputes.c.opened_at),
        ("promises", promises, promises.c.made_at),
        ("plans", payment_plans, payment_plans.c.requested_at),
    ):
        query = sa.select(table).filter_by(**mine).order_by(order, *table.primary_key)
        result[name] = (await db.execute(query)).mappings().all()
    allocated = sa.select(transactions).where(
        transactions.c.customer_id == customer_id,
        transactions.c.allocations.contains([{"invoice_id": invoice_id}]),
    )
    result["payments"] = (
        (await db.execute(allocated.order_by(transactions.c.occurred_at)))
        .mappings()
        .all()
    )
    return result


async def list_transactions(
    db: Db,
    customer_id: str,
    *,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Sequence[Row]:
    """Payments, refunds and credit notes, newest first."""
    query = sa.select(transactions).where(transactions.c.customer_id == customer_id)
    if after is not None:
        key = sa.tuple_(transactions.c.occurred_at, transactions.c.entry_id)
        query = query.where(key < sa.tuple_(sa.literal(after[0]), sa.literal(after[1])))
    query = query.order_by(
        transactions.c.occurred_at.desc(), transactions.c.entry_id.desc()
    ).limit(limit)
    return (await db.execute(query)).mappings().all()


async def get_payment(
    db: Db, customer_id: str, payment_id: str
) -> tuple[Row, Sequence[Row]] | None:
    """One payment with the refunds made from it."""
    query = sa.select(transactions).where(
        transactions.c.customer_id == customer_id,
        transactions.c.entry_id == f"payment:{payment_id}",
    )
    payment = (await db.execute(query)).mappings().first()
    if payment is None:
        return None
    refunds = sa.select(transactions).where(
        transactions.c.customer_id == customer_id,
        transactions.c.kind == "refund",
        transactions.c.payment_id == payment_id,
    )
    return payment, (await db.execute(refunds)).mappings().all()


async def account_rows(db: Db, customer_id: str) -> dict[str, Any]:
    """Balances per currency and every invoice the summary is computed from."""
    balance_rows = (
        (
            await db.execute(
                sa.select(balances)
                .where(balances.c.customer_id == customer_id)
                .order_by(balances.c.currency)
            )
        )
        .mappings()
        .all()
    )
    invoice_rows = (
        await db.execute(
            sa.select(
                invoices.c.currency,
                invoices.c.status,
                invoices.c.balance_minor,
                invoices.c.amount_minor,
                invoices.c.credited_minor,
                invoices.c.due_date,
                invoices.c.settled_date,
            ).where(invoices.c.customer_id == customer_id)
        )
    ).all()
    return {"balances": balance_rows, "invoices": invoice_rows}


async def get_case(
    db: Db, table: sa.Table, customer_id: str, case_id: str
) -> Row | None:
    """A dispute, promise or payment-plan request of the customer."""
    key = next(iter(table.primary_key.columns))
    query = sa.select(table).where(table.c.customer_id == customer_id, key == case_id)
    return (await db.execute(query)).mappings().first()
