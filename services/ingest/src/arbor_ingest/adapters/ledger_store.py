"""Loading and saving customer ledgers, locked for the length of the transaction."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_ingest.adapters.tables import (
    ledger_customers,
    ledger_funds,
    ledger_invoices,
)
from arbor_ingest.domain.accounts import Funds, Invoice
from arbor_ingest.domain.ledger import CustomerLedger


async def get_many(
    session: AsyncSession, customer_ids: Collection[str]
) -> dict[str, CustomerLedger]:
    """Lock and load the ledgers of ``customer_ids``, creating empty ones."""
    if not customer_ids:
        return {}
    ordered = sorted(customer_ids)
    await session.execute(
        insert(ledger_customers).on_conflict_do_nothing(),
        [{"customer_id": c} for c in ordered],
    )
    # Locking in id order keeps two batches that share customers from deadlocking.
    locked = await session.execute(
        sa.select(ledger_customers.c.customer_id, ledger_customers.c.time_zone)
        .where(ledger_customers.c.customer_id.in_(ordered))
        .order_by(ledger_customers.c.customer_id)
        .with_for_update()
    )
    zones = {row[0]: row[1] for row in locked}
    invoices = await _rows(session, ledger_invoices, ordered)
    funds = await _rows(session, ledger_funds, ordered)
    # TODO: a customer's whole history is loaded on every movement; load only open
    # invoices, funds holding money and the rows the events name once customers
    # with tens of thousands of invoices appear.
    return {
        customer: CustomerLedger(
            customer,
            time_zone=zones[customer],
            invoices=[invoice_from_row(r) for r in invoices.get(customer, [])],
            funds=[funds_from_row(r) for r in funds.get(customer, [])],
        )
        for customer in ordered
    }


async def owners(session: AsyncSession, invoice_ids: Collection[str]) -> dict[str, str]:
    """The customer each already issued invoice of ``invoice_ids`` belongs to."""
    if not invoice_ids:
        return {}
    rows = await session.execute(
        sa.select(ledger_invoices.c.invoice_id, ledger_invoices.c.customer_id).where(
            ledger_invoices.c.invoice_id.in_(sorted(invoice_ids))
        )
    )
    return {row[0]: row[1] for row in rows}


async def save(session: AsyncSession, ledgers: Iterable[CustomerLedger]) -> None:
    """Write back what the movements changed, in one statement per table."""
    ledgers = list(ledgers)
    invoices = [
        invoice_to_row(ledger.invoices[i])
        for ledger in ledgers
        for i in sorted(ledger.changed_invoices)
    ]
    funds = [
        funds_to_row(ledger.funds[k])
        for ledger in ledgers
        for k in sorted(ledger.changed_funds)
    ]
    await _upsert(session, ledger_invoices, "invoice_id", invoices)
    await _upsert(session, ledger_funds, "key", funds)
    for ledger in ledgers:
        if ledger.profile_changed:
            await session.execute(
                sa.update(ledger_customers)
                .where(ledger_customers.c.customer_id == ledger.customer_id)
                .values(time_zone=ledger.time_zone)
            )


async def _rows(
    session: AsyncSession, table: sa.Table, customers: list[str]
) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    result = await session.execute(
        sa.select(table).where(table.c.customer_id.in_(customers))
    )
    for row in result.mappings():
        grouped.setdefault(row["customer_id"], []).append(row)
    return grouped


async def _upsert(
    session: AsyncSession, table: sa.Table, key: str, rows: list[dict[str, Any]]
) -> None:
    if not rows:
        return
    statement = insert(table)
    columns = {c.name: statement.excluded[c.name] for c in table.c if c.name != key}
    await session.execute(
        statement.on_conflict_do_update(index_elements=[key], set_=columns), rows
    )


# The conversions are public so that tests can round-trip a ledger without a database.
# Maps are stored as lists of pairs: JSONB reorders object keys, and a refund takes
# money back from the latest application first.
_MAPS = ("applications", "applied", "parked")


def invoice_from_row(row: Any) -> Invoice:
    return Invoice(**_from_pairs(dict(row)))


def funds_from_row(row: Any) -> Funds:
    values = _from_pairs(dict(row))
    del values["key"]
    return Funds(**values)


def invoice_to_row(invoice: Invoice) -> dict[str, Any]:
    return _to_pairs({c.name: getattr(invoice, c.name) for c in ledger_invoices.c})


def funds_to_row(funds: Funds) -> dict[str, Any]:
    return _to_pairs({c.name: getattr(funds, c.name) for c in ledger_funds.c})


def _from_pairs(values: dict[str, Any]) -> dict[str, Any]:
    for name in _MAPS:
        if name in values:
            values[name] = {key: amount for key, amount in values[name]}
    return values


def _to_pairs(values: dict[str, Any]) -> dict[str, Any]:
    for name in _MAPS:
        if name in values:
            values[name] = [[key, amount] for key, amount in values[name].items()]
    return values
