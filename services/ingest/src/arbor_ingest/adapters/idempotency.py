"""Stored answers to requests sent with an ``Idempotency-Key``, per publisher.

Answers are kept for the replay window the API reference states
(``IngestSettings.idempotency_retention_hours``); :func:`purge` deletes older ones.
A retry after the window is taken as a new request, and its events are still
answered as duplicates by their event ids and business keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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


async def purge(session: AsyncSession, *, older_than: datetime, limit: int) -> int:
    """Delete up to ``limit`` answers stored before ``older_than``; return how many."""
    oldest = (
        sa.select(idempotency_keys.c.publisher, idempotency_keys.c.key)
        .where(idempotency_keys.c.created_at < older_than)
        .order_by(idempotency_keys.c.created_at)
        .limit(limit)
    )
    result = await session.execute(
        sa.delete(idempotency_keys).where(
            sa.tuple_(idempotency_keys.c.publisher, idempotency_keys.c.key).in_(oldest)
        )
    )
    deleted: int = result.rowcount  # type: ignore[attr-defined]
    return deleted
