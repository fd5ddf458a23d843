"""What every customer route depends on: the caller's customer, limits, pages.

The customer comes only from the verified token's subject, looked up in the portal's
own link table (RELIABILITY P8): no path, query or body value can choose it, and no
token claim is trusted to name it.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Query, Request, status
from sqlalchemy.ext.asyncio import AsyncEngine

from arbor_portal.adapters import readmodel
from arbor_portal.domain.errors import RuleViolationError, UnlinkedIdentityError
from arbor_portal.domain.ratelimit import RateLimiter, retry_after_seconds
from arbor_portal.handlers.actions import Actor
from arbor_shared.auth import Caller, Principal
from arbor_shared.http import Runtime


@dataclass(frozen=True)
class Account:
    """The caller's customer, its time zone, and where the request's queries run."""

    customer_id: str
    time_zone: str | None
    db: readmodel.Db


async def _resolve(request: Request, caller: Principal, db: readmodel.Db) -> Account:
    found = await readmodel.account_for_subject(db, caller.subject)
    customer_id, time_zone = admit(request, found)
    return Account(customer_id, time_zone, db)


def admit(
    request: Request, found: tuple[str, str | None] | None
) -> tuple[str, str | None]:
    """The linked account, once the identity is linked and within its rate."""
    if found is None:
        raise UnlinkedIdentityError("this identity is not linked to a customer account")
    limiter: RateLimiter = request.app.state.rate_limiter
    wait = limiter.acquire(found[0], time.monotonic())
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many requests for this account; retry later",
            headers={"Retry-After": str(retry_after_seconds(wait))},
        )
    return found


async def _account(request: Request, caller: Caller) -> AsyncIterator[Account]:
    engine: AsyncEngine = request.app.state.read_engine
    async with engine.connect() as connection:
        yield await _resolve(request, caller, connection)


# This and ``Acting`` close when the route function returns, before the answer is
# sent (FastAPI's default is after): an action is committed before its client can
# act on the answer, and a read hands its connection back before the network.
CustomerAccount = Annotated[Account, Depends(_account, scope="function")]
"""The caller's account, for routes that only read; 401, 403 or 429 otherwise.

One connection serves the whole request, without a transaction: the identity
lookup and the route's queries share it and each statement commits on its own.
"""


async def _actor(
    request: Request, caller: Caller, runtime: Runtime
) -> AsyncIterator[Actor]:
    async with runtime.sessions() as session:
        account = await _resolve(request, caller, session)
        yield Actor(account.customer_id, session, runtime.outbox, runtime.clock)
        # Reached only when the route returned: an error skips the commit and the
        # session's close rolls the whole action back, event included.
        await session.commit()


Acting = Annotated[Actor, Depends(_actor, scope="function")]
"""The customer with an open transaction that commits when the route returns."""


def _limit(request: Request, limit: int) -> int:
    cap: int = request.app.state.max_page_size
    return min(limit, cap)


async def page_limit(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size (capped)")] = 50,
) -> int:
    """The page size asked for, clamped to the configured maximum."""
    return _limit(request, limit)


PageLimit = Annotated[int, Depends(page_limit)]
CursorQuery = Annotated[
    str | None,
    Query(
        max_length=512,
        pattern=r"^[A-Za-z0-9_\-=]+$",
        description="Opaque cursor from the previous page's `next_cursor`",
    ),
]


def encode_cursor(*parts: date | datetime | str) -> str:
    """An opaque cursor for keyset pagination."""
    raw = json.dumps([p.isoformat() if not isinstance(p, str) else p for p in parts])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str, kinds: tuple[type, ...]) -> tuple[Any, ...]:
    """The keyset values of a cursor; 422 naming ``cursor`` when it is not ours."""
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(parts, list) or len(parts) != len(kinds):
            raise ValueError("wrong shape")
        return tuple(
            _parse_part(kind, part) for kind, part in zip(kinds, parts, strict=True)
        )
    except (ValueError, TypeError, binascii.Error) as exc:
        raise RuleViolationError(
            "cursor", "is not a cursor this API issued", location="query"
        ) from exc


def _parse_part(kind: type, part: object) -> Any:
    if not isinstance(part, str):
        raise TypeError("cursor parts are text")
    if kind is date:
        return date.fromisoformat(part)
    if kind is datetime:
        moment = datetime.fromisoformat(part)
        if moment.tzinfo is None:
            raise ValueError("naive time")
        return moment
    return part


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        pattern=r"^[\w.:\-]+$",
        description="Retrying with the same key and body replays the first answer",
    ),
]
