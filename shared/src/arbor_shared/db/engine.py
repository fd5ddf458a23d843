"""Async engines scoped to one service's schema.

Each service owns one PostgreSQL schema and sees only it: the schema is the connection's
``search_path``, so table definitions carry no schema and tests can give every test a
fresh one.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection


def create_engine(url: str, schema: str, *, pool_size: int = 10) -> AsyncEngine:
    """An asyncpg engine whose connections resolve names in ``schema`` only."""
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=5,
        connect_args={
            "server_settings": {
                "search_path": schema,
                "application_name": f"arbor-{schema}",
            },
            "timeout": 5,
            "command_timeout": 30,
        },
    )
    sa.event.listen(engine.sync_engine, "checkout", _refuse_closed_connection)
    return engine


def _refuse_closed_connection(
    dbapi_connection: Any, _record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
) -> None:
    # The driver sees a socket the server closed (a restart, an idle timeout)
    # without asking the server; the pool then hands out a fresh connection. The
    # pool's pre-ping asked instead: BEGIN, a ping and ROLLBACK on every checkout,
    # more round trips than a small transaction's own statements.
    if dbapi_connection.driver_connection.is_closed():
        raise sa.exc.DisconnectionError("the database closed this connection")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
