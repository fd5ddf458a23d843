"""Loading and saving customer ledgers, locked for the length of the transaction.

A movement can reach only a customer's open invoices, the funds holding money and
what its events name; through those, the funds applied to a loaded invoice (its
settlement moment and a void need them) and the invoices a named payment paid (a
refund takes money back from them). Only those rows are loaded, so the cost of a
movement does not grow with the customer's settled history.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_ingest.adapters.sql import driver
from arbor_ingest.adapters.tables import ledger_funds, ledger_invoices
from arbor_ingest.domain.accounts import Funds, Invoice
from arbor_ingest.domain.ledger import CustomerLedger
from arbor_shared.db.rows import as_json

# Plain strings: the JSON encoder takes no subclass of str as a key.
INVOICE_COLUMNS = tuple(str(c.name) for c in ledger_invoices.c)
FUNDS_COLUMNS = tuple(str(c.name) for c in ledger_funds.c)
# Maps are stored as lists of pairs: JSONB reorders object keys, and a refund takes
# money back from the latest application first. They travel as JSON text, parsed
# and written here rather than by the driver's codec.
_MAPS = ("applications", "applied", "parked")
_OPEN = "NOT voided AND amount_minor > paid_minor + credited_minor + written_off_minor"


def _select(columns: tuple[str, ...]) -> str:
    return ", ".join(f"{c}::text AS {c}" if c in _MAPS else c for c in columns)


def _upsert(table: str, key: str, columns: tuple[str, ...], types: str) -> str:
    # The rows arrive as one JSON document (see arbor_shared.db.rows).
    typed = ", ".join(f"{c} {t}" for c, t in zip(columns, types.split(), strict=True))
    names = ", ".join(columns)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != key)
    return (
        f"INSERT INTO {table} ({names}) SELECT {names} "  # noqa: S608
        f"FROM json_to_recordset($1::json) AS r({typed}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


# Adds the customers not seen before and locks every one of them, in one statement:
# the no-op update takes the row lock a SELECT ... FOR UPDATE would, and the rows
# come back with the time zone they hold. Locking in id order (the array is sorted)
# keeps two batches that share customers from deadlocking.
_ADD_AND_LOCK_CUSTOMERS = (
    "INSERT INTO ledger_customers (customer_id) SELECT unnest($1::text[]) "
    "ON CONFLICT (customer_id) DO UPDATE SET customer_id = EXCLUDED.customer_id "
    "RETURNING customer_id, time_zone"
)
# The statements are put together once, at import, from the tables' column names.
_SELECT_INVOICES = f"""
WITH wanted AS (
    SELECT invoice_id FROM ledger_invoices
    WHERE customer_id = ANY($1::text[]) AND {_OPEN}
    UNION SELECT unnest($2::text[])
    UNION SELECT pair->>0 FROM ledger_funds, jsonb_array_elements(applied) AS pair
    WHERE key = ANY($3::text[])
)
SELECT {_select(INVOICE_COLUMNS)} FROM ledger_invoices JOIN wanted USING (invoice_id)
WHERE customer_id = ANY($1::text[])
"""  # noqa: S608
_SELECT_FUNDS = f"""
WITH wanted AS (
    SELECT key FROM ledger_funds
    WHERE customer_id = ANY($1::text[]) AND held_minor > 0
    UNION SELECT unnest($2::text[])
)
SELECT {_select(FUNDS_COLUMNS)} FROM ledger_funds JOIN wanted USING (key)
WHERE customer_id = ANY($1::text[])
"""  # noqa: S608
_OWNERS = (
    "SELECT invoice_id, customer_id FROM ledger_invoices "
    "WHERE invoice_id = ANY($1::text[])"
)
_UPSERT_INVOICES = _upsert(
    "ledger_invoices",
    "invoice_id",
    INVOICE_COLUMNS,
    "text text text bigint date date timestamptz bigint bigint bigint bool "
    "timestamptz text timestamptz jsonb",
)
_UPSERT_FUNDS = _upsert(
    "ledger_funds",
    "key",
    FUNDS_COLUMNS,
    "text text text text text bigint timestamptz bigint jsonb jsonb bigint",
)
_SET_ZONES = (
    "UPDATE ledger_customers AS c SET time_zone = u.time_zone "
    "FROM unnest($1::text[], $2::text[]) AS u(customer_id, time_zone) "
    "WHERE c.customer_id = u.customer_id"
)


async def get_many(
    session: AsyncSession,
    customer_ids: Collection[str],
    *,
    invoices: Collection[str] = (),
    funds: Collection[str] = (),
) -> dict[str, CustomerLedger]:
    """Lock and load the ledgers of ``customer_ids``, creating empty ones.

    ``invoices`` and ``funds`` (funds keys) are what the events to apply name.
    """
    if not customer_ids:
        return {}
    ordered = sorted(customer_ids)
    connection = await driver(session)
    zones = dict(await connection.fetch(_ADD_AND_LOCK_CUSTOMERS, ordered))
    invoice_rows = await connection.fetch(
        _SELECT_INVOICES, ordered, sorted(invoices), sorted(funds)
    )
    loaded = [invoice_from_row(_decoded(r)) for r in invoice_rows]
    applied = {key for invoice in loaded for key in invoice.applications}
    wanted = sorted({*funds, *applied})
    funds_rows = await connection.fetch(_SELECT_FUNDS, ordered, wanted)
    held = [funds_from_row(_decoded(r)) for r in funds_rows]
    by_customer: dict[str, tuple[list[Invoice], list[Funds]]] = {
        customer: ([], []) for customer in ordered
    }
    for invoice in loaded:
        by_customer[invoice.customer_id][0].append(invoice)
    for item in held:
        by_customer[item.customer_id][1].append(item)
    return {
        customer: CustomerLedger(
            customer, time_zone=zones[customer], invoices=rows[0], funds=rows[1]
        )
        for customer, rows in by_customer.items()
    }


async def owners(session: AsyncSession, invoice_ids: Collection[str]) -> dict[str, str]:
    """The customer each already issued invoice of ``invoice_ids`` belongs to."""
    if not invoice_ids:
        return {}
    connection = await driver(session)
    return dict(await connection.fetch(_OWNERS, sorted(invoice_ids)))


async def save(session: AsyncSession, ledgers: Iterable[CustomerLedger]) -> None:
    """Write back what the movements changed, in one statement per table."""
    ledgers = list(ledgers)
    invoices = [
        ledger.invoices[i]
        for ledger in ledgers
        for i in sorted(ledger.changed_invoices)
    ]
    funds = [
        ledger.funds[k] for ledger in ledgers for k in sorted(ledger.changed_funds)
    ]
    zones = [(g.customer_id, g.time_zone) for g in ledgers if g.profile_changed]
    connection = await driver(session)
    if invoices:
        await connection.execute(_UPSERT_INVOICES, _document(invoices, INVOICE_COLUMNS))
    if funds:
        await connection.execute(_UPSERT_FUNDS, _document(funds, FUNDS_COLUMNS))
    if zones:
        customers, time_zones = zip(*zones, strict=True)
        await connection.execute(_SET_ZONES, list(customers), list(time_zones))


def _document(accounts: list[Any], columns: tuple[str, ...]) -> str:
    # Straight from the accounts, maps as lists of pairs: the rows of
    # invoice_to_row and funds_to_row, in one encoder call for the whole batch.
    maps = [c for c in columns if c in _MAPS]
    plain = [c for c in columns if c not in _MAPS]
    rows = [
        {c: getattr(a, c) for c in plain}
        | {m: list(getattr(a, m).items()) for m in maps}
        for a in accounts
    ]
    return as_json(rows)


def _decoded(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: orjson.loads(v) if k in _MAPS else v for k, v in record.items()}


# The conversions are public so that tests can round-trip a ledger without a database.


def invoice_from_row(row: Any) -> Invoice:
    return Invoice(**_from_pairs(dict(row)))


def funds_from_row(row: Any) -> Funds:
    values = _from_pairs(dict(row))
    del values["key"], values["held_minor"]
    return Funds(**values)


def invoice_to_row(invoice: Invoice) -> dict[str, Any]:
    return _to_pairs({c: getattr(invoice, c) for c in INVOICE_COLUMNS})


def funds_to_row(funds: Funds) -> dict[str, Any]:
    return _to_pairs({c: getattr(funds, c) for c in FUNDS_COLUMNS})


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
