"""Fixtures of the metrics tests: a migrated schema of their own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from arbor_metrics.adapters.tables import FACT_TABLES, progress
from arbor_metrics.bootstrap import MIGRATIONS
from arbor_shared.db import create_engine, session_factory
from arbor_shared.db.migrations import upgrade_async
from tests.infra import PostgresHandle


@dataclass(frozen=True)
class Store:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    async def clear(self) -> None:
        names = ", ".join(t.name for t in (*FACT_TABLES, progress))
        async with self.engine.begin() as connection:
            await connection.execute(sa.text(f"TRUNCATE {names}"))


@pytest.fixture(scope="module")
async def store(postgres: PostgresHandle) -> AsyncIterator[Store]:
    schema = f"m{uuid.uuid4().hex[:10]}_metrics"
    await upgrade_async(MIGRATIONS, postgres.url, schema)
    engine = create_engine(postgres.url, schema, pool_size=2)
    yield Store(engine, session_factory(engine))
    async with engine.begin() as connection:
        await connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    await engine.dispose()
