"""The invoice list's own connections: asyncpg, without SQLAlchemy's per-use costs.

The list is the portal's busiest request. Through the SQLAlchemy pool it paid three
round trips of pre-ping on every checkout (the driver wraps its ping in a
transaction), an execution path and a tracing span per statement, and overflow
connections opened and closed again whenever more requests were in flight than the
pool holds. Here the same statements, compiled once, run as prepared statements on a
pool of plain asyncpg connections: one round trip each, and a request that finds
every connection busy waits for one instead of opening another.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from arbor_portal.adapters import readmodel
from arbor_portal.adapters.tables import customers, identities

_DIALECT = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]
# About 200 bytes an entry: 100,000 subjects hold 20 MB.
MAX_LINK_HINTS = 100_000
_ACQUIRE_TIMEOUT_SECONDS = 5.0
_CONNECT_TIMEOUT_SECONDS = 5.0
_COMMAND_TIMEOUT_SECONDS = 30.0
# URL options SQLAlchemy's asyncpg adapter takes for itself; asyncpg refuses them.
_SQLALCHEMY_ONLY_ARGUMENTS = (
    "prepared_statement_cache_size",
    "prepared_statement_name_func",
)


@dataclass(frozen=True)
class _Compiled:
    """A statement's SQL and the order its named parameters take as ``$n``."""

    sql: str
    names: tuple[str, ...]
    constants: dict[str, Any]

    def arguments(self, values: dict[str, Any]) -> list[Any]:
        merged = self.constants | values
        return [merged[name] for name in self.names]


def _compile(statement: sa.Select[Any]) -> _Compiled:
    compiled = statement.compile(dialect=_DIALECT)
    names = tuple(compiled.positiontup or ())
    return _Compiled(compiled.string, names, dict(compiled.params))


_ACCOUNT_FOR_SUBJECT = _compile(readmodel.ACCOUNT_FOR_SUBJECT)


@functools.cache
def _linked_page(**shape: bool) -> _Compiled:
    # One row per invoice of the page, or one row without an invoice when the page
    # is empty, and no row at all when the subject is not (or no longer) linked to
    # the customer: the link is checked in the same snapshot as the page is read.
    page = readmodel.invoice_page_statement(**shape).lateral("page")
    statement = (
        sa.select(customers.c.time_zone, page)
        .select_from(identities)
        .outerjoin(customers, customers.c.customer_id == identities.c.customer_id)
        .outerjoin(page, sa.true())
        .where(
            identities.c.subject == sa.bindparam("subject"),
            identities.c.customer_id == sa.bindparam("customer_id"),
        )
        .order_by(page.c.issue_date.desc(), page.c.invoice_id.desc())
    )
    return _compile(statement)


async def _keep_session(_connection: asyncpg.Connection) -> None:
    # The default reset sends a query (unlisten, unlock, reset settings) on every
    # release; these connections only ever run the selects below, which leave no
    # session state behind. An open transaction is still rolled back by asyncpg.
    return None


class ReadPool:
    """asyncpg connections to the engine's database and schema, opened on demand."""

    def __init__(self, engine: AsyncEngine, *, schema: str, size: int) -> None:
        self._engine = engine
        self._schema = schema
        self._size = size
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        """Create the pool; no connection is made before the first request."""
        # The engine's server and credentials, and the session settings and timeouts
        # that ``arbor_shared.db.create_engine`` gives its own connections.
        args, kwargs = self._engine.dialect.create_connect_args(self._engine.url)
        for adapter_only in _SQLALCHEMY_ONLY_ARGUMENTS:
            kwargs.pop(adapter_only, None)
        self._pool = await asyncpg.create_pool(
            *args,
            **kwargs,
            server_settings={
                "search_path": self._schema,
                "application_name": f"arbor-{self._schema}-reads",
            },
            timeout=_CONNECT_TIMEOUT_SECONDS,
            command_timeout=_COMMAND_TIMEOUT_SECONDS,
            min_size=0,
            max_size=self._size,
            reset=_keep_session,
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection for the duration of one request."""
        if self._pool is None:
            raise RuntimeError("the read pool is not open")
        async with self._pool.acquire(timeout=_ACQUIRE_TIMEOUT_SECONDS) as connection:
            yield connection


async def account_for_subject(
    connection: asyncpg.Connection, subject: str
) -> tuple[str, str | None] | None:
    """The customer a token subject is linked to and its time zone, in one trip."""
    statement = _ACCOUNT_FOR_SUBJECT
    row = await connection.fetchrow(
        statement.sql, *statement.arguments({"subject": subject})
    )
    return (row["customer_id"], row["time_zone"]) if row is not None else None


async def linked_invoice_page(
    connection: asyncpg.Connection,
    *,
    subject: str,
    customer_id: str,
    where: readmodel.InvoiceFilter,
    after: tuple[date, str] | None,
    limit: int,
) -> tuple[str | None, list[asyncpg.Record]] | None:
    """The customer's time zone and page, or None if ``subject`` is not linked to it.

    Newest first by issue date, then id; keyset pagination after ``after``.
    """
    statement = _linked_page(**readmodel.page_shape(where, after))
    values = readmodel.page_values(customer_id, where=where, after=after, limit=limit)
    rows: list[asyncpg.Record] = await connection.fetch(
        statement.sql, *statement.arguments(values | {"subject": subject})
    )
    if not rows:
        return None
    time_zone: str | None = rows[0]["time_zone"]
    return time_zone, [row for row in rows if row["invoice_id"] is not None]


class LinkHints:
    """The customer each recently seen subject was linked to, least recent dropped.

    Only a hint: it keys the rate limit before the database is asked, and every query
    that reads through it checks the link again. Unlinked subjects are never kept.
    """

    def __init__(self, max_size: int = MAX_LINK_HINTS) -> None:
        self._max_size = max_size
        self._customers: OrderedDict[str, str] = OrderedDict()

    def get(self, subject: str) -> str | None:
        customer_id = self._customers.get(subject)
        if customer_id is not None:
            self._customers.move_to_end(subject)
        return customer_id

    def remember(self, subject: str, customer_id: str) -> None:
        self._customers[subject] = customer_id
        self._customers.move_to_end(subject)
        if len(self._customers) > self._max_size:
            self._customers.popitem(last=False)

    def forget(self, subject: str) -> None:
        self._customers.pop(subject, None)
