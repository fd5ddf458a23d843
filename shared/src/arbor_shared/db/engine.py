"""Async engines scoped to one service's schema.

Each service owns one PostgreSQL schema and sees only it: the schema is the connection's
``search_path``, so table definitions carry no schema and tests can give every test a
fresh one.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def create_engine(url: str, schema: str, *, pool_size: int = 10) -> AsyncEngine:
    """An asyncpg engine whose connections resolve names in ``schema`` only."""
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
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


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
