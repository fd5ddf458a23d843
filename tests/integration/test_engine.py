"""The shared engine's pool against a real database."""

from __future__ import annotations

import asyncio

import asyncpg
import sqlalchemy as sa

from arbor_shared.db.engine import create_engine
from tests.conftest import Namespace


async def test_a_connection_the_server_closed_is_replaced_at_checkout(
    namespace: Namespace,
) -> None:
    engine = create_engine(
        namespace.postgres.url, namespace.schema("pool"), pool_size=1
    )
    try:
        async with engine.connect() as connection:
            first = await connection.scalar(sa.text("SELECT pg_backend_pid()"))
        # From a connection of its own: the pool would hand out the very one.
        admin = await asyncpg.connect(namespace.postgres.url.replace("+asyncpg", ""))
        await admin.execute("SELECT pg_terminate_backend($1)", first)
        await admin.close()
        # The pooled connection learns of the closed socket once the loop reads it.
        await asyncio.sleep(0.2)

        async with engine.connect() as connection:
            second = await connection.scalar(sa.text("SELECT pg_backend_pid()"))
    finally:
        await engine.dispose()

    assert second != first
