"""Reading and writing segmentation's tables inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_segmentation.adapters.tables import (
    cohort_definitions,
    customer_features,
    due_timers,
    membership_history,
    memberships,
)
from arbor_segmentation.domain import codec
from arbor_segmentation.domain.features import CustomerState
from arbor_segmentation.domain.membership import Membership, Move


async def load_state(session: AsyncSession, customer_id: str) -> CustomerState:
    """The customer's state, locked for this transaction; a fresh one if unknown."""
    document = await session.scalar(
        sa.select(customer_features.c.state)
        .where(customer_features.c.customer_id == customer_id)
        .with_for_update()
    )
    return codec.load(document) if document else CustomerState(customer_id)


async def save_state(session: AsyncSession, state: CustomerState, at: datetime) -> None:
    document = codec.dump(state)
    await session.execute(
        insert(customer_features)
        .values(customer_id=state.customer_id, state=document, updated_at=at)
        .on_conflict_do_update(
            index_elements=[customer_features.c.customer_id],
            set_={"state": document, "updated_at": at},
        )
    )


async def membership_and_active_version(
    session: AsyncSession, customer_id: str
) -> tuple[Membership | None, int | None]:
    """The customer's membership and the active definition version, in one trip."""
    active = (
        sa.select(cohort_definitions.c.version)
        .where(cohort_definitions.c.status == "active")
        .scalar_subquery()
    )
    query = (
        sa.select(memberships, active.label("active_version"))
        .select_from(sa.select(sa.literal(1)).subquery())
        .outerjoin(memberships, memberships.c.customer_id == customer_id)
    )
    row = (await session.execute(query)).one()
    membership = _membership(row) if row.cohort is not None else None
    return membership, row.active_version


async def save_membership(
    session: AsyncSession, customer_id: str, membership: Membership
) -> None:
    await session.execute(_upsert_membership(customer_id, membership))


async def add_move(session: AsyncSession, customer_id: str, move: Move) -> None:
    """Close the open history interval, open the next one, set the membership."""
    membership = move.membership
    # One statement, three writes: a move costs the handler one round trip.
    closed = (
        sa.update(membership_history)
        .where(
            membership_history.c.customer_id == customer_id,
            membership_history.c.valid_to.is_(None),
        )
        .values(valid_to=membership.since)
        .cte("closed")
    )
    opened = (
        sa.insert(membership_history)
        .values(
            customer_id=customer_id,
            version=membership.version,
            from_cohort=move.from_cohort,
            to_cohort=membership.cohort,
            definition_version=membership.definition_version,
            rule=membership.rule,
            features=move.features,
            valid_from=membership.since,
            valid_to=None,
        )
        .cte("opened")
    )
    statement = _upsert_membership(customer_id, membership).add_cte(closed, opened)
    await session.execute(statement)


def _upsert_membership(customer_id: str, membership: Membership) -> Any:
    values = {
        "cohort": membership.cohort,
        "definition_version": membership.definition_version,
        "rule": membership.rule,
        "version": membership.version,
        "since": membership.since,
    }
    return (
        insert(memberships)
        .values(customer_id=customer_id, **values)
        .on_conflict_do_update(index_elements=[memberships.c.customer_id], set_=values)
    )


async def list_history(session: AsyncSession, customer_id: str) -> Sequence[Any]:
    """Every interval of the customer's membership, oldest first."""
    result = await session.execute(
        sa.select(membership_history)
        .where(membership_history.c.customer_id == customer_id)
        .order_by(membership_history.c.version)
    )
    return result.all()


async def sync_timers(
    session: AsyncSession, customer_id: str, wanted: dict[str, datetime]
) -> None:
    """Make the customer's timers exactly ``wanted`` (key to firing instant)."""
    stale = sa.delete(due_timers).where(due_timers.c.customer_id == customer_id)
    if wanted:
        stale = stale.where(due_timers.c.invoice_id.not_in(list(wanted)))
    await session.execute(stale)
    if not wanted:
        return
    rows = [
        {"invoice_id": i, "customer_id": customer_id, "fire_at": at}
        for i, at in wanted.items()
    ]
    statement = insert(due_timers).values(rows)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[due_timers.c.invoice_id],
            set_={"fire_at": statement.excluded.fire_at},
        )
    )


async def claim_due_timers(
    session: AsyncSession, now: datetime, limit: int
) -> list[str]:
    """Take the timers that have fired, skipping those another worker holds."""
    rows = (
        await session.execute(
            sa.select(due_timers.c.invoice_id, due_timers.c.customer_id)
            .where(due_timers.c.fire_at <= now)
            .order_by(due_timers.c.fire_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if rows:
        await session.execute(
            sa.delete(due_timers).where(
                due_timers.c.invoice_id.in_([r.invoice_id for r in rows])
            )
        )
    return sorted({r.customer_id for r in rows})


async def lock_page(
    session: AsyncSession, cursor: str | None, limit: int
) -> list[tuple[CustomerState, Membership | None]]:
    """The next page of customers after ``cursor``, locked, with their memberships."""
    query = (
        sa.select(customer_features.c.state, memberships)
        .outerjoin(
            memberships,
            memberships.c.customer_id == customer_features.c.customer_id,
        )
        .order_by(customer_features.c.customer_id)
        .limit(limit)
        .with_for_update(of=customer_features)
    )
    if cursor is not None:
        query = query.where(customer_features.c.customer_id > cursor)
    rows = (await session.execute(query)).all()
    return [
        (codec.load(row.state), _membership(row) if row.cohort is not None else None)
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
        sa.select(customer_features.c.state, memberships.c.cohort)
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
    return [(codec.load(row.state), row.cohort) for row in rows]


def _membership(row: Any) -> Membership:
    return Membership(
        cohort=row.cohort,
        definition_version=row.definition_version,
        rule=row.rule,
        version=row.version,
        since=row.since,
    )


async def peek_state(session: AsyncSession, customer_id: str) -> CustomerState | None:
    """The customer's state without locking it (for reading only)."""
    document = await session.scalar(
        sa.select(customer_features.c.state).where(
            customer_features.c.customer_id == customer_id
        )
    )
    return codec.load(document) if document else None
