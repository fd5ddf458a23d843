"""Stored answers to requests sent with an ``Idempotency-Key``, per publisher.

Known limit: keys are kept forever, so the table only grows. It goes away with a
retention job that deletes keys older than a published replay window (Stripe keeps
24 hours) and a documented window in the API reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_ingest.adapters.tables import idempotency_keys


@dataclass(frozen=True)
class StoredAnswer:
    request_sha256: str
    status_code: int
    response: Any


async def get(
    session: AsyncSession, *, publisher: str, key: str
) -> StoredAnswer | None:
    row = (
        await session.execute(
            sa.select(
                idempotency_keys.c.request_sha256,
                idempotency_keys.c.status_code,
                idempotency_keys.c.response,
            ).where(
                idempotency_keys.c.publisher == publisher,
                idempotency_keys.c.key == key,
            )
        )
    ).one_or_none()
    return StoredAnswer(*row) if row else None


async def add(
    session: AsyncSession, *, publisher: str, key: str, answer: StoredAnswer
) -> bool:
    """Store the answer; False when a concurrent request stored one first."""
    inserted = await session.scalar(
        insert(idempotency_keys)
        .values(
            publisher=publisher,
            key=key,
            request_sha256=answer.request_sha256,
            status_code=answer.status_code,
            response=answer.response,
        )
        .on_conflict_do_nothing()
        .returning(idempotency_keys.c.key)
    )
    return inserted is not None
