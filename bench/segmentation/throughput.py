"""Segmentation throughput: events/s through the service and a full re-score.

Produces a backlog (per customer: created, N invoices issued and settled) under a
fresh topic prefix, measures the raw aiokafka consume rate of that backlog, then runs
the service in-process and times consume → update features → evaluate rules → write
→ publish until its inbox holds every event; finally activates a new definition and
times the background re-score of every customer.

Usage: ``ARBOR_BENCH_KAFKA=host:port ARBOR_BENCH_DATABASE_URL=postgresql+asyncpg://...
uv run python -m bench.segmentation.throughput [customers] [invoices]``
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy.ext.asyncio import create_async_engine

from arbor_segmentation.adapters import definitions, repository
from arbor_segmentation.adapters.definitions import Activation
from arbor_segmentation.adapters.tables import messaging
from arbor_segmentation.bootstrap import MIGRATIONS, create_app
from arbor_segmentation.config import SegmentationSettings
from arbor_shared import topics
from arbor_shared.db.migrations import upgrade_async
from arbor_shared.events import (
    CustomerCreated,
    EventData,
    InvoiceIssued,
    InvoiceSettled,
)
from arbor_shared.events.envelope import Envelope
from arbor_shared.kafka.clients import ensure_topics
from arbor_shared.local_issuer import AUDIENCE, ISSUER, LocalIssuer
from arbor_shared.runtime import ServiceRuntime
from arbor_shared.settings import KafkaSettings
from arbor_shared.topics import TopicNames
from bench.common import infrastructure, write_results
from tests.support import eventually, running

HERE = Path(__file__).resolve().parent
START = date(2023, 1, 1)


def backlog(customers: int, invoices: int) -> list[EventData]:
    events: list[EventData] = []
    for c in range(customers):
        customer_id = f"cus-{c:06d}"
        events.append(
            CustomerCreated(
                customer_id=customer_id,
                name="Bench",
                country="DE",
                time_zone="Europe/Berlin",
                currency="EUR",
                payment_method=("card", "bank_transfer", "direct_debit")[c % 3],
                started_on=START,
            )
        )
        for i in range(invoices):
            events.extend(_invoice(customer_id, f"{customer_id}-{i}", i, c))
    return events


def _invoice(customer_id: str, invoice_id: str, i: int, c: int) -> list[EventData]:
    issued = START + timedelta(days=30 * i)
    due = issued + timedelta(days=30)
    settled = due + timedelta(days=(c * 7 + i * 3) % 25 - 10)
    at = datetime(issued.year, issued.month, issued.day, 9, tzinfo=UTC)
    return [
        InvoiceIssued(
            customer_id=customer_id,
            invoice_id=invoice_id,
            currency="EUR",
            amount_minor=10_000 + c,
            issue_date=issued,
            due_date=due,
            issued_at=at,
        ),
        InvoiceSettled(
            customer_id=customer_id,
            invoice_id=invoice_id,
            currency="EUR",
            issue_date=issued,
            due_date=due,
            amount_minor=10_000 + c,
            paid_minor=10_000 + c,
            credited_minor=0,
            written_off_minor=0,
            settled_by="payment",
            settled_at=datetime(settled.year, settled.month, settled.day, tzinfo=UTC),
            settled_date=settled,
        ),
    ]


async def produce(bootstrap: str, prefix: str, events: list[EventData]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=262_144
    )
    await producer.start()
    try:
        now = datetime.now(UTC)
        pending = []
        for event in events:
            envelope = Envelope.for_data(event, source="bench", time=now)
            pending.append(
                await producer.send(
                    f"{prefix}.{event.topic}",
                    value=event.model_dump_json().encode(),
                    key=event.customer_id.encode(),
                    headers=envelope.to_headers(),
                )
            )
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def raw_consume_rate(bootstrap: str, prefix: str, total: int) -> float:
    names = [
        f"{prefix}.{t}" for t in (topics.CUSTOMERS, topics.INVOICES, topics.LEDGER)
    ]
    consumer = AIOKafkaConsumer(
        *names,
        bootstrap_servers=bootstrap,
        group_id=f"{prefix}.raw",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=500,
    )
    await consumer.start()
    try:
        seen = 0
        started = time.perf_counter()
        while seen < total:
            batch = await consumer.getmany(timeout_ms=500)
            seen += sum(len(records) for records in batch.values())
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def consumed(runtime: ServiceRuntime) -> int:
    async with runtime.sessions() as session:
        count = await session.scalar(
            sa.select(sa.func.count()).select_from(messaging.inbox)
        )
    return int(count or 0)


async def rescore_seconds(runtime: ServiceRuntime) -> tuple[float, int]:
    now = runtime.clock.now()
    async with runtime.sessions() as session, session.begin():
        stored = await definitions.add(
            session,
            [("late", 1, "on_time_rate_365 < 0.8", None)],
            "standard",
            description="bench",
            created_by="bench",
            at=now,
        )
        version = stored.definition.version
        await definitions.mark_active(session, version, now)
        activation = Activation(
            id=str(uuid.uuid4()),
            definition_version=version,
            status="running",
            total=await repository.count_customers(session),
            processed=0,
            moved=0,
            cursor=None,
            requested_by="bench",
            started_at=now,
            finished_at=None,
        )
        await definitions.add_activation(session, activation)
    started = time.perf_counter()

    async def done() -> bool:
        async with runtime.sessions() as session:
            found = await definitions.get_activation(session, activation.id)
        return found is not None and found.status == "done"

    await eventually(done, timeout=3600)
    return time.perf_counter() - started, activation.total


async def drop_schema(url: str, schema: str) -> None:
    """Leave a shared database as found."""
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await engine.dispose()


async def main(customers: int, invoices: int) -> None:
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    events = backlog(customers, invoices)
    with infrastructure() as infra, tempfile.TemporaryDirectory() as keys:
        settings = SegmentationSettings(
            database_url=infra.database_url,
            database_schema=f"{prefix}_segmentation",
            kafka=KafkaSettings(bootstrap=infra.bootstrap, topic_prefix=prefix),
            oidc_issuer=ISSUER,
            oidc_audience=AUDIENCE,
            oidc_jwks_url=LocalIssuer(Path(keys)).jwks_url,
            log_level="WARNING",
            rescore_poll_seconds=0.05,
        )
        await upgrade_async(MIGRATIONS, infra.database_url, settings.database_schema)
        await ensure_topics(settings.kafka, TopicNames(prefix).all_with_dead_letters())
        await produce(infra.bootstrap, prefix, events)
        raw = await raw_consume_rate(infra.bootstrap, prefix, len(events))
        app = create_app(settings)
        runtime: ServiceRuntime = app.state.runtime
        async with running(app):
            started = time.perf_counter()

            async def all_consumed() -> bool:
                return await consumed(runtime) >= len(events)

            await eventually(all_consumed, timeout=3600)
            elapsed = time.perf_counter() - started
            rescore, scored = await rescore_seconds(runtime)
        await drop_schema(infra.database_url, settings.database_schema)
    results: dict[str, object] = {
        "customers": customers,
        "events": len(events),
        "segmentation_events_per_second": round(len(events) / elapsed, 1),
        "raw_aiokafka_events_per_second": round(raw, 1),
        "rescore_customers": scored,
        "rescore_seconds": round(rescore, 2),
        "rescore_customers_per_second": round(scored / rescore, 1),
    }
    write_results(HERE, results)
    for name, value in results.items():
        print(f"{name:32} {value}")


if __name__ == "__main__":
    arguments = [int(a) for a in sys.argv[1:3]]
    asyncio.run(main(*(arguments + [2000, 2][len(arguments) :])))
