"""The session's own asyncpg connection, for the statements a batch runs per row.

A batch of thousands of events is written with one statement per table, its rows
passed as one JSON document that PostgreSQL turns back into rows (a list of ids as
one array). The statement text never changes, so it is prepared once per
connection; through the ORM every batch size would compile and plan a new statement
with thousands of parameters. These statements skip SQLAlchemy's per-statement
spans, as the outbox's COPY does.
"""

from __future__ import annotations

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession


async def driver(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection of ``session``, inside the session's transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    if not driver.is_in_transaction():
        # SQLAlchemy sends BEGIN with its first statement; a statement sent past it
        # before then would commit on its own.
        await connection.execute(sa.text("SELECT 1"))
    return driver
