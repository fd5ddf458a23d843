"""A throwaway consumer that records every effect it applies, in order.

Run as ``python -m tests.faults.effects_app`` (settings from ``ARBOR_EFFECTS_*``). It
uses the production consumer loop, inbox and runtime; the fault tests kill, pause and
restart it, then check that each invoice was applied exactly once (``applications``)
and that each customer's invoices were applied in the order they were published
(``applied_log``, whose serial id is the order of application).
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
from arbor_shared.logging import configure_logging
from arbor_shared.runtime import ServiceRuntime
from arbor_shared.settings import ServiceSettings

SERVICE = "effects"
CONSUMER = "apply"

metadata = sa.MetaData()
messaging = messaging_tables(metadata)
applications = sa.Table(
    "applications",
    metadata,
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("times", sa.Integer, nullable=False),
)
applied_log = sa.Table(
    "applied_log",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("invoice_id", sa.Text, nullable=False),
)


class EffectsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ARBOR_EFFECTS_")


async def apply_invoice(ctx: Context, event: InvoiceIssued) -> None:
    # Counted without a unique key on purpose: only the inbox stands between a
    # redelivery and a second application, which is what the tests probe.
    await ctx.session.execute(
        insert(applications)
        .values(invoice_id=event.invoice_id, times=1)
        .on_conflict_do_update(
            index_elements=[applications.c.invoice_id],
            set_={"times": applications.c.times + 1},
        )
    )
    await ctx.session.execute(
        sa.insert(applied_log).values(
            customer_id=event.customer_id, invoice_id=event.invoice_id
        )
    )


async def create_tables(runtime: ServiceRuntime) -> None:
    schema = runtime.settings.database_schema
    async with runtime.engine.begin() as connection:
        # Two replicas start at once; CREATE SCHEMA IF NOT EXISTS races with itself.
        await connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(7302, hashtext(:schema))"),
            {"schema": schema},
        )
        await connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await connection.run_sync(metadata.create_all)
    # The pool's connections belong to this loop; uvicorn runs another.
    await runtime.engine.dispose()


def main() -> None:
    settings = EffectsSettings()
    configure_logging(SERVICE, level=settings.log_level, fmt=settings.log_format)
    runtime = ServiceRuntime.create(SERVICE, settings, messaging)
    asyncio.run(create_tables(runtime))
    runtime.add_consumer(
        CONSUMER, [topics.INVOICES], {InvoiceIssued.event_type: apply_invoice}
    )
    app = create_service_app(runtime, title=SERVICE, description="test only")
    uvicorn.run(app, host="127.0.0.1", port=settings.http_port, log_config=None)


if __name__ == "__main__":
    main()
