"""Upgrading an outbox whose relay marked rows sent to one whose relay deletes them.

Every service's first revision creates the messaging tables from the current
definition, so a database from before the change is rebuilt here by hand: migrated
to the revision before it, then given back the column and index it had.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from arbor_ingest.bootstrap import MIGRATIONS
from arbor_shared.db.engine import create_engine
from arbor_shared.db.migrations import upgrade_async
from tests.conftest import Namespace
from tests.ingest.conftest import ingest_settings

BEFORE = "0004_retention"


async def test_upgrade_keeps_the_unsent_rows_and_drops_the_sent_ones(
    namespace: Namespace,
) -> None:
    settings = ingest_settings(namespace)
    url = settings.database_url.get_secret_value()
    schema = settings.database_schema
    await upgrade_async(MIGRATIONS, url, schema, BEFORE)
    engine = create_engine(url, schema, pool_size=1)
    try:
        await _as_before_the_change(engine)
        await _stage(engine, ("ev-sent", True), ("ev-unsent", False))

        await upgrade_async(MIGRATIONS, url, schema)

        async with engine.connect() as connection:
            left = (await connection.scalars(sa.text(_EVENT_IDS))).all()
            columns = await connection.run_sync(
                lambda sync: sa.inspect(sync).get_columns("outbox")
            )
    finally:
        await engine.dispose()
    assert left == ["ev-unsent"]
    assert "sent_at" not in {column["name"] for column in columns}


_EVENT_IDS = "SELECT event_id FROM outbox ORDER BY seq"


async def _as_before_the_change(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            sa.text("ALTER TABLE outbox ADD COLUMN sent_at TIMESTAMPTZ")
        )
        await connection.execute(
            sa.text("CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL")
        )


async def _stage(engine: AsyncEngine, *rows: tuple[str, bool]) -> None:
    statement = sa.text(
        "INSERT INTO outbox (event_id, topic, value, headers, sent_at) "
        "VALUES (:event_id, 't', :value, '[]', CASE WHEN :sent THEN now() END)"
    )
    async with engine.begin() as connection:
        for event_id, sent in rows:
            await connection.execute(
                statement, {"event_id": event_id, "value": b"{}", "sent": sent}
            )
