"""Storing policy versions and putting the customers of a cohort onto a new one."""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_dunning import planning
from arbor_dunning.adapters.policy_document import PolicyDocument
from arbor_dunning.adapters.tables import customers, invoices, policies
from arbor_dunning.domain.errors import PolicyNotFoundError
from arbor_dunning.domain.policy import DEFAULT_COHORT, default_policy
from arbor_shared.kafka.outbox import Outbox

logger = logging.getLogger(__name__)


async def add_policy(
    session: AsyncSession,
    outbox: Outbox,
    *,
    cohort: str,
    document: PolicyDocument,
    created_by: str,
    now: datetime,
) -> int:
    """Store a new version and hand the cohort's open invoices over to it.

    Versions are numbered across all cohorts, so (invoice, policy version, step,
    channel) stays a unique contact key even when a customer changes cohort.
    """
    # Serialises version numbering between replicas and concurrent requests.
    await session.execute(sa.text("LOCK TABLE policies IN SHARE ROW EXCLUSIVE MODE"))
    latest = await session.scalar(sa.select(sa.func.max(policies.c.version)))
    version = (latest or 0) + 1
    document.to_policy(cohort, version)
    await session.execute(
        sa.insert(policies).values(
            cohort=cohort,
            version=version,
            document=document.model_dump(mode="json"),
            created_by=created_by,
        )
    )
    await _replan_cohort(session, outbox, cohort, now)
    logger.info("policy of cohort %s now at version %d", cohort, version)
    return version


async def _replan_cohort(
    session: AsyncSession, outbox: Outbox, cohort: str, now: datetime
) -> None:
    # TODO: re-plan in batches in the background — a cohort with very many open
    # invoices makes this request slow; a job table with a cursor removes it.
    members = sa.select(customers.c.customer_id)
    if cohort != DEFAULT_COHORT:
        members = members.where(customers.c.cohort == cohort)
    ids = (
        await session.scalars(
            sa.select(invoices.c.invoice_id).where(
                invoices.c.status == "open",
                invoices.c.customer_id.in_(members.scalar_subquery()),
            )
        )
    ).all()
    for invoice_id in ids:
        await planning.plan(session, outbox, invoice_id, now)


async def seed_defaults(session: AsyncSession, cohorts: list[str]) -> None:
    """Give each listed cohort the default ladder unless it has a policy already."""
    for cohort in cohorts:
        exists = await session.scalar(
            sa.select(policies.c.version).where(policies.c.cohort == cohort).limit(1)
        )
        if exists is not None:
            continue
        await session.execute(
            sa.text("LOCK TABLE policies IN SHARE ROW EXCLUSIVE MODE")
        )
        latest = await session.scalar(sa.select(sa.func.max(policies.c.version)))
        document = PolicyDocument.from_policy(default_policy(cohort))
        await session.execute(
            insert(policies)
            .values(
                cohort=cohort,
                version=(latest or 0) + 1,
                document=document.model_dump(mode="json"),
                created_by="seed",
            )
            .on_conflict_do_nothing()
        )


async def get_policy(
    session: AsyncSession, cohort: str, version: int | None = None
) -> sa.Row[tuple[object, ...]]:
    query = sa.select(policies).where(policies.c.cohort == cohort)
    if version is not None:
        query = query.where(policies.c.version == version)
    row = (
        await session.execute(query.order_by(policies.c.version.desc()).limit(1))
    ).one_or_none()
    if row is None:
        raise PolicyNotFoundError(
            f"no policy for cohort {cohort!r}"
            + (f" at version {version}" if version else "")
        )
    return row


async def latest_policies(session: AsyncSession) -> list[sa.Row[tuple[object, ...]]]:
    newest = (
        sa.select(policies.c.cohort, sa.func.max(policies.c.version).label("version"))
        .group_by(policies.c.cohort)
        .subquery()
    )
    return list(
        (
            await session.execute(
                sa.select(policies)
                .join(
                    newest,
                    sa.and_(
                        newest.c.cohort == policies.c.cohort,
                        newest.c.version == policies.c.version,
                    ),
                )
                .order_by(policies.c.cohort)
            )
        ).all()
    )
