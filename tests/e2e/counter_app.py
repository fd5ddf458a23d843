"""A throwaway service that counts how often each event's effect is applied.

Run as ``python -m tests.e2e.counter_app``; crash tests kill it and check that every
count is exactly one. It uses the production consumer loop, inbox and runtime.
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
import uvicorn
from pydantic_settings import SettingsConfigDict
from sqlalchemy.dialects.postgresql import insert

from arbor_shared import topics
from arbor_shared.db import messaging_tables
from arbor_shared.events import InvoiceIssued
from arbor_shared.http import create_service_app
from arbor_shared.kafka.consumer import Context
from arbor_shared.runtime import ServiceRuntime
from arbor_shared.settings import ServiceSettings

metadata = sa.MetaData()
messaging = messaging_tables(metadata)
applications = sa.Table(
    "applications",
    metadata,
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("times", sa.Integer, nullable=False),
)


class CounterSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ARBOR_COUNTER_")


async def count_application(ctx: Context, event: InvoiceIssued) -> None:
    await ctx.session.execute(
        insert(applications)
        .values(invoice_id=event.invoice_id, times=1)
        .on_conflict_do_update(
            index_elements=[applications.c.invoice_id],
            set_={"times": applications.c.times + 1},
        )
    )


async def create_tables(runtime: ServiceRuntime) -> None:
    async with runtime.engine.begin() as connection:
        await connection.execute(
            sa.text(f'CREATE SCHEMA IF NOT EXISTS "{runtime.settings.database_schema}"')
        )
        await connection.run_sync(metadata.create_all)
    # The pool's connections belong to this short-lived event loop; uvicorn runs
    # the service on another one.
    await runtime.engine.dispose()


def main() -> None:
    settings = CounterSettings()
    runtime = ServiceRuntime.create("counter", settings, messaging)
    asyncio.run(create_tables(runtime))
    runtime.add_consumer(
        "count", [topics.INVOICES], {InvoiceIssued.event_type: count_application}
    )
    app = create_service_app(runtime, title="counter", description="test only")
    uvicorn.run(app, host="127.0.0.1", port=settings.http_port, log_config=None)


if __name__ == "__main__":
    main()
