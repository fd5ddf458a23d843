"""Helpers the integration and end-to-end tests share."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from fastapi import FastAPI

from arbor_shared.db.migrations import upgrade_async
from arbor_shared.events import EventData
from arbor_shared.events.envelope import Envelope
from arbor_shared.kafka.clients import ensure_topics
from arbor_shared.local_issuer import AUDIENCE, ISSUER
from arbor_shared.runtime import ServiceRuntime
from arbor_shared.settings import ServiceSettings
from arbor_shared.topics import TopicNames
from tests.conftest import Namespace

S = TypeVar("S", bound=ServiceSettings)
T = TypeVar("T")

WAIT_SECONDS = 30.0


def service_settings(
    settings_type: type[S], namespace: Namespace, service: str, **overrides: Any
) -> S:
    """Settings for ``service`` inside the test's namespace."""
    values: dict[str, Any] = {
        "database_url": namespace.postgres.url,
        "database_schema": namespace.schema(service),
        "database_pool_size": 3,
        "kafka": namespace.kafka_settings(),
        "oidc_issuer": ISSUER,
        "oidc_audience": AUDIENCE,
        "oidc_jwks_url": namespace.issuer.jwks_url,
        "http_port": 1,
    }
    return settings_type(**(values | overrides))


async def migrate(migrations: str, settings: ServiceSettings) -> None:
    await upgrade_async(
        migrations, settings.database_url.get_secret_value(), settings.database_schema
    )


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """Run the app's lifespan (runtime, relay, consumers) around the block."""
    async with app.router.lifespan_context(app):
        yield app


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = WAIT_SECONDS
) -> T:
    """Poll ``probe`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.1)


async def produce(
    bootstrap: str,
    topic: str,
    records: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]],
) -> None:
    """Write raw records (key, value, headers) to ``topic`` and wait for the acks."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(topic, value=value, key=key, headers=headers)
    finally:
        await producer.stop()


def encode(
    data: EventData, *, event_id: str | None = None
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """A well-formed record for ``data``, as the outbox relay would write it."""
    from datetime import UTC, datetime

    envelope = Envelope.for_data(
        data, source="tests", time=datetime.now(UTC), event_id=event_id
    )
    return (
        data.customer_id.encode(),
        data.model_dump_json().encode(),
        (envelope.to_headers()),
    )


@asynccontextmanager
async def _reader(*topics: str, bootstrap: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer of ``topics`` from their start, in no group and committing nothing."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def read_topic(
    bootstrap: str, topic: str, count: int, *, timeout: float = WAIT_SECONDS
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``count`` records from the start of ``topic`` (no group, no commit)."""
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    async with _reader(topic, bootstrap=bootstrap) as consumer:
        while len(records) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"read {len(records)} of {count} records from {topic}"
                )
            batch = await consumer.getmany(timeout_ms=200)
            records.extend(r for part in batch.values() for r in part)
    return records


async def read_to_end(
    bootstrap: str, topics: list[str], *, timeout: float = WAIT_SECONDS
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on ``topics`` from their start to their current end.

    Records come partition by partition, each partition's in order: one key's
    records keep their order, records of different keys may not.
    """
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    async with _reader(*topics, bootstrap=bootstrap) as consumer:
        while not consumer.assignment():
            assert time.monotonic() < deadline, f"{topics} were never assigned"
            await asyncio.sleep(0.05)
        partitions = sorted(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            assert time.monotonic() < deadline, f"could not read {topics} to the end"
            batch = await consumer.getmany(timeout_ms=200)
            records.extend(r for part in batch.values() for r in part)
    return sorted(records, key=lambda r: (r.topic, r.partition, r.offset))


async def published(
    runtime: ServiceRuntime, *base_topics: str
) -> list[ConsumerRecord[bytes, bytes]]:
    """What ``runtime``'s service has published on ``base_topics``, all of it.

    Waits until the service's outbox is empty first: the relay deletes a row only
    once Kafka has acknowledged it, so by then every staged event is on its topic.
    """

    async def drained() -> bool:
        async with runtime.sessions() as session:
            rows = await session.scalar(
                sa.select(sa.func.count()).select_from(runtime.tables.outbox)
            )
        return rows == 0

    await eventually(drained)
    names = [runtime.topics(base) for base in base_topics]
    return await read_to_end(runtime.settings.kafka.bootstrap, names)


def header(record: ConsumerRecord[bytes, bytes], name: str) -> str:
    """One CloudEvents header of a published record, decoded."""
    value: bytes = dict(record.headers)[name]
    return value.decode()


async def create_topics(namespace: Namespace) -> None:
    """Create every topic of the namespace, as a service's start would."""
    settings = namespace.kafka_settings()
    names = TopicNames(settings.topic_prefix).all_with_dead_letters()
    await ensure_topics(settings, names)


def relayed(runtime: ServiceRuntime) -> Counter[str]:
    """Records the relay has had acknowledged by Kafka, per topic, from its counter.

    The outbox keeps no sent rows, so this is where a test sees what a service has
    published without reading every topic back.
    """
    counts: Counter[str] = Counter()
    for family in runtime.metrics.produced.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                counts[sample.labels["topic"]] += int(sample.value)
    return counts
