"""Segmentation throughput: events/s through the service and a full re-score.

Produces a backlog (per customer: created, N invoices issued and settled) under a
fresh topic prefix, measures the raw aiokafka consume rate of that backlog, then runs
the service in-process and times consume → update features → evaluate rules → write
→ publish (to the outbox; the relay sends it on in the same process) from the first
event applied until its inbox holds every event; then waits for the outbox to drain;
finally activates a new definition and times the background re-score of every
customer.

Two layouts of the backlog:

- ``one-topic`` (default): every fact on one topic, in date order, so a customer's
  facts arrive in order and, as in steady operation, rarely two in one batch; every
  invoice is scored at issue and every settlement teaches the model.
- ``topics``: each fact on its own topic, customer by customer, as a backlog
  replayed after an outage: a customer's facts come several to a batch and the
  ledger's settlements often before the invoices they settle.

Wall-clock rates depend on whatever else the machine runs; the CPU seconds this
process spends per event (the service, its relay and the bench's probes) much less.

Usage: ``ARBOR_BENCH_KAFKA=host:port ARBOR_BENCH_DATABASE_URL=postgresql+asyncpg://...
uv run python -m bench.segmentation.throughput [customers] [invoices]
[--layout one-topic|topics] [--max-poll N]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy.ext.asyncio import create_async_engine

from arbor_segmentation.adapters import definitions, repository
from arbor_segmentation.adapters.definitions import Activation
from arbor_segmentation.adapters.tables import messaging
from arbor_segmentation.bootstrap import MIGRATIONS, create_server_app
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
from bench.common import Infra, infrastructure, write_results
from tests.support import eventually, relayed, running

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


def by_time(events: list[EventData]) -> list[EventData]:
    """The backlog as it happens: every customer's facts interleaved by date."""
    return sorted(events, key=_business_date)


def _business_date(event: EventData) -> date:
    if isinstance(event, CustomerCreated):
        return event.started_on or START
    if isinstance(event, InvoiceIssued):
        return event.issue_date
    assert isinstance(event, InvoiceSettled)
    return event.settled_date


def destination(prefix: str, event: EventData, layout: str) -> str:
    """Its own topic, or for ``one-topic`` the invoices topic for every event."""
    return f"{prefix}.{event.topic if layout == 'topics' else topics.INVOICES}"


async def produce(
    bootstrap: str, prefix: str, events: list[EventData], layout: str
) -> None:
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
                    destination(prefix, event, layout),
                    value=event.model_dump_json().encode(),
                    key=event.customer_id.encode(),
                    headers=envelope.to_headers(),
                )
            )
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def raw_consume_rate(bootstrap: str, names: list[str], total: int) -> float:
    consumer = AIOKafkaConsumer(
        *names,
        bootstrap_servers=bootstrap,
        group_id=f"{names[0]}.raw",
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


@dataclass(frozen=True)
class Timing:
    """Wall-clock and this process's CPU seconds of one phase."""

    wall: float
    cpu: float


async def timed(done: Callable[[], Awaitable[bool]]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    await eventually(done, timeout=3600)
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def applied(runtime: ServiceRuntime) -> float:
    """Events the consumer's handlers took, from its own counter (no database)."""
    return sum(
        sample.value
        for metric in runtime.metrics.registry.collect()
        if metric.name.endswith("events_consumed")
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels["outcome"] == "applied"
    )


async def count(runtime: ServiceRuntime, table: sa.Table, *where: Any) -> int:
    async with runtime.sessions() as session:
        found = await session.scalar(
            sa.select(sa.func.count()).select_from(table).where(*where)
        )
    return int(found or 0)


async def consume(runtime: ServiceRuntime, total: int) -> Timing:
    """From the first event applied until every one is committed in the inbox."""

    async def all_applied() -> bool:
        # The inbox is counted only at the end: a count over it every 100 ms would
        # take a sizeable share of the two cores the service shares with it.
        if applied(runtime) < total:
            return False
        return await count(runtime, messaging.inbox) >= total

    # Joining the consumer group takes seconds that are not throughput.
    deadline = time.monotonic() + 120
    while applied(runtime) == 0 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    return await timed(all_applied)


async def published(runtime: ServiceRuntime) -> tuple[Timing, int]:
    """Until the relay has sent every staged event; also how many there were."""

    async def drained() -> bool:
        return await count(runtime, messaging.outbox) == 0

    timing = await timed(drained)
    return timing, sum(relayed(runtime).values())


async def rescore(runtime: ServiceRuntime) -> tuple[Timing, int]:
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

    async def done() -> bool:
        async with runtime.sessions() as session:
            found = await definitions.get_activation(session, activation.id)
        return found is not None and found.status == "done"

    return await timed(done), activation.total


async def drop_schema(url: str, schema: str) -> None:
    """Leave a shared database as found."""
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await engine.dispose()


def service_settings(
    infra: Infra, prefix: str, keys: Path, max_poll: int
) -> SegmentationSettings:
    """The service's settings for one run under a fresh prefix and schema."""
    return SegmentationSettings(
        database_url=infra.database_url,
        database_schema=f"{prefix}_segmentation",
        kafka=KafkaSettings(
            bootstrap=infra.bootstrap,
            topic_prefix=prefix,
            max_poll_records=max_poll,
        ),
        oidc_issuer=ISSUER,
        oidc_audience=AUDIENCE,
        oidc_jwks_url=LocalIssuer(keys).jwks_url,
        log_level="WARNING",
    )


@asynccontextmanager
async def backlogged(
    arguments: argparse.Namespace,
) -> AsyncIterator[tuple[Infra, SegmentationSettings, list[EventData], list[str]]]:
    """Infrastructure, a migrated schema and the backlog produced to its topics."""
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    events = backlog(arguments.customers, arguments.invoices)
    if arguments.layout == "one-topic":
        events = by_time(events)
    names = sorted({destination(prefix, e, arguments.layout) for e in events})
    with infrastructure() as infra, tempfile.TemporaryDirectory() as keys:
        settings = service_settings(infra, prefix, Path(keys), arguments.max_poll)
        await upgrade_async(MIGRATIONS, infra.database_url, settings.database_schema)
        await ensure_topics(settings.kafka, TopicNames(prefix).all_with_dead_letters())
        await produce(infra.bootstrap, prefix, events, arguments.layout)
        try:
            yield infra, settings, events, names
        finally:
            await drop_schema(infra.database_url, settings.database_schema)


async def main(arguments: argparse.Namespace) -> None:
    async with backlogged(arguments) as (infra, settings, events, names):
        raw = await raw_consume_rate(infra.bootstrap, names, len(events))
        app = create_server_app(settings)
        runtime: ServiceRuntime = app.state.runtime
        async with running(app):
            consumed = await consume(runtime, len(events))
            relayed, staged = await published(runtime)
            rescored, scored = await rescore(runtime)
    results = {"customers": arguments.customers, "layout": arguments.layout}
    results |= report(len(events), raw, consumed, relayed, staged, rescored, scored)
    results["max_poll_records"] = arguments.max_poll
    write_results(HERE, results)
    for name, value in results.items():
        print(f"{name:42} {value}")


def report(
    events: int,
    raw: float,
    consumed: Timing,
    relayed: Timing,
    staged: int,
    rescored: Timing,
    scored: int,
) -> dict[str, object]:
    return {
        "events": events,
        "segmentation_events_per_second": round(events / consumed.wall, 1),
        "segmentation_cpu_microseconds_per_event": round(
            consumed.cpu / events * 1e6, 1
        ),
        "raw_aiokafka_events_per_second": round(raw, 1),
        "events_staged_in_outbox": staged,
        "outbox_drained_seconds_after_consuming": round(relayed.wall, 2),
        "rescore_customers": scored,
        "rescore_seconds": round(rescored.wall, 2),
        "rescore_customers_per_second": round(scored / rescored.wall, 1),
        "rescore_cpu_microseconds_per_customer": round(
            rescored.cpu / max(scored, 1) * 1e6, 1
        ),
        "load_average_1min_at_end": os.getloadavg()[0],
    }


def parser(description: str) -> argparse.ArgumentParser:
    """The options every run takes; the profile script adds its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("customers", type=int, nargs="?", default=2000)
    parser.add_argument("invoices", type=int, nargs="?", default=2)
    parser.add_argument("--max-poll", type=int, default=500)
    parser.add_argument(
        "--layout",
        choices=("one-topic", "topics"),
        default="one-topic",
        help="one-topic: every fact on one topic in date order (steady operation); "
        "topics: each on its own topic, customer by customer (a replayed backlog)",
    )
    return parser


if __name__ == "__main__":
    asyncio.run(main(parser(__doc__.splitlines()[0]).parse_args()))
