"""The invoice list's dependency and reads, on the read pool.

The list is the busiest route, so token, account, rate limit and page size come from
a single plain dependency (FastAPI's solving costs per dependency, on every request,
and more for one that holds a resource until the route returns). The subject's
customer comes from a remembered link when there is one, and the page query itself
checks that link again (``readpool.linked_invoice_page``), so the data read is always
that of the customer the link table names at that moment.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Annotated

import asyncpg
from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from arbor_portal.adapters import readmodel, readpool
from arbor_portal.domain import account
from arbor_portal.domain.errors import UnlinkedIdentityError
from arbor_portal.entrypoints.deps import admit
from arbor_shared.auth import authenticated
from arbor_shared.runtime import ServiceRuntime

Page = tuple[date, list[asyncpg.Record]]
"""Today in the customer's time zone, and the invoice rows of the page."""


@dataclass(frozen=True)
class PooledAccount:
    """The caller's subject and customer and the page size, for the invoice list."""

    subject: str
    customer_id: str
    limit: int
    request: Request


# The scheme ``arbor_shared.auth`` declares, so the OpenAPI document is unchanged.
_bearer = HTTPBearer(auto_error=False)


async def _pooled_account(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    limit: Annotated[int, Query(ge=1, le=500, description="Page size (capped)")] = 50,
) -> PooledAccount:
    caller = await authenticated(request, credentials)
    customer_id = _hints(request).get(caller.subject)
    if customer_id is None:
        async with _pool(request).connection() as connection:
            customer_id = await _link(request, connection, caller.subject)
    else:
        admit(request, (customer_id, None))
    cap: int = request.app.state.max_page_size
    return PooledAccount(caller.subject, customer_id, min(limit, cap), request)


PooledCustomerAccount = Annotated[PooledAccount, Depends(_pooled_account)]
"""The caller's account for the invoice list; 401, 403 or 429 otherwise."""


async def invoice_page(
    me: PooledAccount,
    where: readmodel.InvoiceFilter,
    *,
    overdue: bool,
    after: tuple[date, str] | None,
) -> Page:
    """The customer's page of invoices; 403 or 429 if the link changed meanwhile."""
    async with _pool(me.request).connection() as connection:
        page = await _linked_page(connection, me, where, overdue=overdue, after=after)
        if page is None:
            # The remembered link no longer holds, which only a change to the link
            # table outside the API causes: once more, as the table says now.
            _hints(me.request).forget(me.subject)
            customer_id = await _link(me.request, connection, me.subject)
            me = replace(me, customer_id=customer_id)
            page = await _linked_page(
                connection, me, where, overdue=overdue, after=after
            )
    if page is None:
        raise UnlinkedIdentityError("this identity is not linked to a customer account")
    return page


async def _link(request: Request, connection: asyncpg.Connection, subject: str) -> str:
    found = await readpool.account_for_subject(connection, subject)
    customer_id, _time_zone = admit(request, found)
    _hints(request).remember(subject, customer_id)
    return customer_id


async def _linked_page(
    connection: asyncpg.Connection,
    me: PooledAccount,
    where: readmodel.InvoiceFilter,
    *,
    overdue: bool,
    after: tuple[date, str] | None,
) -> Page | None:
    today = None
    if overdue:
        # "Overdue" compares due dates with today in the customer's zone, so the
        # zone is needed before the page is asked for.
        found = await readpool.account_for_subject(connection, me.subject)
        if found is None or found[0] != me.customer_id:
            return None
        today = _today(me.request, found[1])
        where = replace(where, overdue_before=today)
    page = await readpool.linked_invoice_page(
        connection,
        subject=me.subject,
        customer_id=me.customer_id,
        where=where,
        after=after,
        limit=me.limit,
    )
    if page is None:
        return None
    time_zone, rows = page
    return today or _today(me.request, time_zone), rows


def _today(request: Request, time_zone: str | None) -> date:
    runtime: ServiceRuntime = request.app.state.runtime
    return account.local_today(runtime.clock.now(), time_zone)


def _hints(request: Request) -> readpool.LinkHints:
    hints: readpool.LinkHints = request.app.state.link_hints
    return hints


def _pool(request: Request) -> readpool.ReadPool:
    pool: readpool.ReadPool = request.app.state.read_pool
    return pool
