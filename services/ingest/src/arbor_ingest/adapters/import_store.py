"""What imports ask of ingest's tables: which customers exist already."""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_ingest.adapters.tables import business_keys


async def known_customers(session: AsyncSession, ids: Collection[str]) -> set[str]:
    """The ids among ``ids`` that a CustomerCreated has booked, from any source."""
    if not ids:
        return set()
    rows = await session.scalars(
        sa.select(business_keys.c.key).where(
            business_keys.c.kind == "customer", business_keys.c.key.in_(set(ids))
        )
    )
    return set(rows)
