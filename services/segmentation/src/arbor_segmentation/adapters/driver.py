"""The asyncpg connection under a session, for the statements run once per batch.

The consumer's batch statements carry a column of values per parameter and run
once or twice per batch each; going through SQLAlchemy's execution and result
layers for them costs more per row than the statements themselves. They run on
the session's own connection, so inside its transaction, with asyncpg keeping
each prepared.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


async def connection(session: AsyncSession) -> Any:
    """The session's asyncpg connection, inside its current transaction."""
    bound = await session.connection()
    raw = await bound.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    return driver
