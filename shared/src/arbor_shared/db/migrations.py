"""Alembic, driven from code: one migration history per service, in its own schema.

Each service ships ``adapters/migrations`` with an ``env.py`` that calls
:func:`run_env`; :func:`upgrade` runs it from a CLI, a Kubernetes Job or a test.
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from sqlalchemy.engine import Connection

from arbor_shared.db.engine import create_engine


def upgrade(
    script_location: str, url: str, schema: str, revision: str = "head"
) -> None:
    """Bring ``schema`` up to ``revision``, the newest of the service's by default."""
    config = Config()
    config.set_main_option("script_location", script_location)
    config.attributes["url"] = url
    config.attributes["schema"] = schema
    command.upgrade(config, revision)


async def upgrade_async(
    script_location: str, url: str, schema: str, revision: str = "head"
) -> None:
    """:func:`upgrade` for callers already inside an event loop."""
    await asyncio.to_thread(upgrade, script_location, url, schema, revision)


MIGRATION_LOCK = sa.text("SELECT pg_advisory_lock(7302, hashtext(:schema))")
"""Held while a schema is created and migrated; keyed by the schema's name."""


def run_env(target_metadata: sa.MetaData) -> None:
    """Body of a service's ``env.py``: migrate online inside the service schema."""
    attributes = context.config.attributes
    asyncio.run(_migrate(attributes["url"], attributes["schema"], target_metadata))


async def _migrate(url: str, schema: str, metadata: sa.MetaData) -> None:
    engine = create_engine(url, schema, pool_size=1)
    async with engine.connect() as connection:
        # Replicas that start together migrate one after the other: neither CREATE
        # SCHEMA IF NOT EXISTS nor a migration is safe against a concurrent twin.
        await connection.execute(MIGRATION_LOCK, {"schema": schema})
        await connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await connection.commit()
        await connection.run_sync(_run_migrations, schema, metadata)
    # Closing the connection releases the session-level lock.
    await engine.dispose()


def _run_migrations(connection: Connection, schema: str, metadata: sa.MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table_schema=schema,
    )
    with context.begin_transaction():
        context.run_migrations()
