"""Cohort definitions and their activations in the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_segmentation.adapters.tables import activations, cohort_definitions
from arbor_segmentation.domain import rules
from arbor_segmentation.domain.rules import Definition

RuleRow = tuple[str, int, str, str | None]


@dataclass(frozen=True)
class StoredDefinition:
    definition: Definition
    description: str
    status: str
    created_by: str
    created_at: datetime
    activated_at: datetime | None


@dataclass(frozen=True)
class Activation:
    id: str
    definition_version: int
    status: str
    total: int
    processed: int
    moved: int
    cursor: str | None
    requested_by: str
    started_at: datetime
    finished_at: datetime | None


class DefinitionCache:
    """Compiled definitions by version; a stored version never changes."""

    def __init__(self) -> None:
        self._compiled: dict[int, Definition] = {}

    async def get(self, session: AsyncSession, version: int) -> Definition | None:
        if version not in self._compiled:
            stored = await get(session, version)
            if stored is None:
                return None
            self._compiled[version] = stored.definition
        return self._compiled[version]


async def get(session: AsyncSession, version: int) -> StoredDefinition | None:
    row = (
        await session.execute(
            sa.select(cohort_definitions).where(cohort_definitions.c.version == version)
        )
    ).first()
    return _stored(row) if row else None


async def list_all(session: AsyncSession) -> list[StoredDefinition]:
    rows = await session.execute(
        sa.select(cohort_definitions).order_by(cohort_definitions.c.version)
    )
    return [_stored(row) for row in rows]


async def add(
    session: AsyncSession,
    rule_rows: list[RuleRow],
    default_cohort: str,
    *,
    description: str,
    created_by: str,
    at: datetime,
    status: str = "draft",
) -> StoredDefinition:
    """Validate and store the next version."""
    # One writer at a time picks the next version number.
    await session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('cohorts'))"))
    latest = await session.scalar(sa.select(sa.func.max(cohort_definitions.c.version)))
    version = (latest or 0) + 1
    definition = rules.build(version, rule_rows, default_cohort)
    await session.execute(
        insert(cohort_definitions).values(
            version=version,
            rules=[_rule_json(rule) for rule in definition.rules],
            default_cohort=default_cohort,
            description=description,
            status=status,
            created_by=created_by,
            created_at=at,
            activated_at=at if status == "active" else None,
        )
    )
    stored = await get(session, version)
    assert stored is not None
    return stored


async def mark_active(session: AsyncSession, version: int, at: datetime) -> None:
    """Make ``version`` the one every evaluation uses from now on."""
    await session.execute(
        sa.update(cohort_definitions)
        .where(cohort_definitions.c.status == "active")
        .values(status="retired")
    )
    await session.execute(
        sa.update(cohort_definitions)
        .where(cohort_definitions.c.version == version)
        .values(status="active", activated_at=at)
    )


async def add_activation(session: AsyncSession, activation: Activation) -> None:
    await session.execute(
        sa.update(activations)
        .where(activations.c.status == "running")
        .values(status="superseded", finished_at=activation.started_at)
    )
    await session.execute(sa.insert(activations).values(**activation.__dict__))


async def get_activation(
    session: AsyncSession, activation_id: str, *, lock: bool = False
) -> Activation | None:
    query = sa.select(activations).where(activations.c.id == activation_id)
    if lock:
        query = query.with_for_update(skip_locked=True)
    row = (await session.execute(query)).first()
    return Activation(**row._mapping) if row else None


async def running_activation_ids(session: AsyncSession) -> list[str]:
    rows = await session.scalars(
        sa.select(activations.c.id)
        .where(activations.c.status == "running")
        .order_by(activations.c.started_at)
    )
    return list(rows.all())


async def advance_activation(
    session: AsyncSession,
    activation: Activation,
    *,
    cursor: str | None,
    processed: int,
    moved: int,
    finished_at: datetime | None,
) -> None:
    await session.execute(
        sa.update(activations)
        .where(activations.c.id == activation.id)
        .values(
            cursor=cursor,
            processed=activation.processed + processed,
            moved=activation.moved + moved,
            status="done" if finished_at else "running",
            finished_at=finished_at,
        )
    )


def _rule_json(rule: rules.Rule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "priority": rule.priority,
        "expression": rule.expression,
        "cohort": rule.cohort,
    }


def _stored(row: Any) -> StoredDefinition:
    rule_rows = [
        (r["name"], r["priority"], r["expression"], r["cohort"]) for r in row.rules
    ]
    return StoredDefinition(
        definition=rules.build(row.version, rule_rows, row.default_cohort),
        description=row.description,
        status=row.status,
        created_by=row.created_by,
        created_at=row.created_at,
        activated_at=row.activated_at,
    )
