"""Reading and writing segmentation's tables inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_segmentation.adapters import driver
from arbor_segmentation.adapters.tables import (
    customer_features,
    due_timers,
    membership_history,
    memberships,
)
from arbor_segmentation.domain import codec
from arbor_segmentation.domain.features import CustomerState
from arbor_segmentation.domain.membership import Membership

# States are read as text and parsed with orjson, several times faster than the
# standard library's parser SQLAlchemy's JSONB type uses.
_STATE_TEXT = sa.cast(customer_features.c.state, sa.Text).label("state")
_LOCK_STATES = (
    "SELECT customer_id, CAST(state AS text) AS state FROM customer_features "
    "WHERE customer_id = ANY(CAST($1 AS text[])) "
    "ORDER BY customer_id FOR UPDATE"
)
_SKIP_LOCKED = _LOCK_STATES + " SKIP LOCKED"
_MEMBERSHIPS = (
    "SELECT active.version AS active_version, m.customer_id, m.cohort, "
    "m.definition_version, m.rule, m.version, m.since FROM (SELECT ("
    "SELECT version FROM cohort_definitions WHERE status = 'active') AS version) "
    "AS active LEFT JOIN memberships AS m "
    "ON m.customer_id = ANY(CAST($1 AS text[]))"
)


async def lock_states(
    session: AsyncSession, customer_ids: Collection[str], *, skip_locked: bool = False
) -> dict[str, CustomerState]:
    """The known customers' states, locked for this transaction; unknown ones absent.

    With ``skip_locked``, also those another transaction holds are left out.
    """
    # Every path locks states first and in id order, before any timer, membership
    # or history row, so no two transactions wait on each other in a cycle.
    connection = await driver.connection(session)
    query = _SKIP_LOCKED if skip_locked else _LOCK_STATES
    rows = await connection.fetch(query, sorted(customer_ids))
    return {row[0]: _state(row[1]) for row in rows}


async def memberships_and_active_version(
    session: AsyncSession, customer_ids: Collection[str]
) -> tuple[dict[str, Membership], int | None]:
    """The customers' memberships and the active definition version, in one trip."""
    connection = await driver.connection(session)
    rows = await connection.fetch(_MEMBERSHIPS, list(customer_ids))
    found = {row["customer_id"]: _membership(row) for row in rows if row["cohort"]}
    return found, rows[0]["active_version"]


async def list_history(session: AsyncSession, customer_id: str) -> Sequence[Any]:
    """Every interval of the customer's membership, oldest first."""
    result = await session.execute(
        sa.select(membership_history)
        .where(membership_history.c.customer_id == customer_id)
        .order_by(membership_history.c.version)
    )
    return result.all()


async def due_customers(session: AsyncSession, now: datetime, limit: int) -> list[str]:
    """Customers with a timer that has fired, longest waiting first (no locks)."""
    rows = await session.scalars(
        sa.select(due_timers.c.customer_id)
        .join(
            customer_features,
            customer_features.c.customer_id == due_timers.c.customer_id,
        )
        .where(due_timers.c.fire_at <= now)
        .group_by(due_timers.c.customer_id)
        .order_by(sa.func.min(due_timers.c.fire_at))
        .limit(limit)
    )
    return list(rows)


async def take_due_timers(
    session: AsyncSession, customer_ids: Collection[str], now: datetime
) -> list[str]:
    """Delete the fired timers of customers whose states this transaction holds.

    Returns the customers that still had one: another worker may have taken them
    between :func:`due_customers` and the lock.
    """
    rows = await session.scalars(
        sa.delete(due_timers)
        .where(
            due_timers.c.customer_id.in_(list(customer_ids)),
            due_timers.c.fire_at <= now,
        )
        .returning(due_timers.c.customer_id)
    )
    return sorted(set(rows))


_PAGE = (
    "SELECT f.customer_id, CAST(f.state AS text) AS state, m.cohort, "
    "m.definition_version, m.rule, m.version, m.since FROM customer_features AS f "
    "LEFT JOIN memberships AS m ON m.customer_id = f.customer_id "
    "WHERE f.customer_id > $1 ORDER BY f.customer_id LIMIT $2 FOR UPDATE OF f"
)


async def lock_page(
    session: AsyncSession, cursor: str | None, limit: int
) -> list[tuple[CustomerState, Membership | None]]:
    """The next page of customers after ``cursor``, locked, with their memberships."""
    connection = await driver.connection(session)
    # Every identifier is at least one character long, so all follow "".
    rows = await connection.fetch(_PAGE, cursor or "", limit)
    return [
        (_state(row["state"]), _membership(row) if row["cohort"] is not None else None)
        for row in rows
    ]


async def count_customers(session: AsyncSession) -> int:
    count = await session.scalar(
        sa.select(sa.func.count()).select_from(customer_features)
    )
    return int(count or 0)


async def states_with_cohorts(
    session: AsyncSession, cursor: str | None, limit: int
) -> list[tuple[CustomerState, str | None]]:
    """A page of customers' states with their current cohorts, for surveys."""
    query = (
        sa.select(_STATE_TEXT, memberships.c.cohort)
        .outerjoin(
            memberships,
            memberships.c.customer_id == customer_features.c.customer_id,
        )
        .order_by(customer_features.c.customer_id)
        .limit(limit)
    )
    if cursor is not None:
        query = query.where(customer_features.c.customer_id > cursor)
    rows = (await session.execute(query)).all()
    return [(_state(row.state), row.cohort) for row in rows]


def _state(text: str) -> CustomerState:
    return codec.load(orjson.loads(text))


def _membership(values: Mapping[Any, Any]) -> Membership:
    return Membership(
        cohort=values["cohort"],
        definition_version=values["definition_version"],
        rule=values["rule"],
        version=values["version"],
        since=values["since"],
    )


async def peek_state(session: AsyncSession, customer_id: str) -> CustomerState | None:
    """The customer's state without locking it (for reading only)."""
    document = await session.scalar(
        sa.select(customer_features.c.state).where(
            customer_features.c.customer_id == customer_id
        )
    )
    return codec.load(document) if document else None
