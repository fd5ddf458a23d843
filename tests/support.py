"""Helpers the integration and end-to-end tests share."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from fastapi import FastAPI

from arbor_shared.db.migrations import upgrade_async
from arbor_shared.events import EventData
from arbor_shared.events.envelope import Envelope
from arbor_shared.kafka.clients import ensure_topics
from arbor_shared.local_issuer import AUDIENCE, ISSUER
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


async def read_topic(
    bootstrap: str, topic: str, count: int, *, timeout: float = WAIT_SECONDS
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``count`` records from the start of ``topic`` (no group, no commit)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"read {len(records)} of {count} records from {topic}"
                )
            batch = await consumer.getmany(timeout_ms=200)
            records.extend(r for part in batch.values() for r in part)
    finally:
        await consumer.stop()
    return records


async def create_topics(namespace: Namespace) -> None:
    """Create every topic of the namespace, as a service's start would."""
    settings = namespace.kafka_settings()
    names = TopicNames(settings.topic_prefix).all_with_dead_letters()
    await ensure_topics(settings, names)
