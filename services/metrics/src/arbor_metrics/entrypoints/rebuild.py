"""Rebuild: replay the source topics from the start into a fresh schema.

The facts are insert-only sets keyed by the facts themselves, so replaying the same
topics yields the same rows whatever the interleaving of partitions, and therefore the
same KPIs for every day (RELIABILITY P7, F11). By default the bulk replay
(:mod:`arbor_metrics.entrypoints.replay`) feeds the live handlers; ``via_loop`` uses
the ordinary consumer loop instead, inbox included, with dead letters left in the
fresh schema's outbox (no relay runs), so a rebuild never republishes anything.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_metrics.adapters.tables import FACT_TABLES, messaging
from arbor_metrics.bootstrap import MIGRATIONS, SERVICE, SOURCE_TOPICS
from arbor_metrics.config import MetricsSettings
from arbor_metrics.entrypoints.replay import Replay
from arbor_metrics.handlers import HANDLERS
from arbor_shared.db import create_engine, session_factory
from arbor_shared.db.migrations import upgrade_async
from arbor_shared.kafka.clients import ensure_topics
from arbor_shared.kafka.consumer import ConsumerLoop
from arbor_shared.runtime import ServiceRuntime

logger = logging.getLogger(__name__)

_POLL_SECONDS = 0.2
_LOOP_BATCH = 5_000


@dataclass(frozen=True)
class RebuildReport:
    """``seconds`` until every fact was committed, schema creation included;
    ``digest_seconds`` for checksumming them afterwards."""

    schema: str
    records: int
    seconds: float
    digest: dict[str, str]
    digest_seconds: float


async def rebuild(
    settings: MetricsSettings, *, schema: str, via_loop: bool = False
) -> RebuildReport:
    """Replay every source topic into ``schema`` (dropped first) and digest it."""
    started = time.perf_counter()
    # A replay is a bulk job: larger batches mean fewer transactions and commits.
    kafka = settings.kafka.model_copy(update={"max_poll_records": _LOOP_BATCH})
    target = settings.model_copy(update={"database_schema": schema, "kafka": kafka})
    await _recreate(target)
    runtime = ServiceRuntime.create(SERVICE, target, messaging)
    # A topic nobody wrote to yet would never be assigned and the replay would wait.
    await ensure_topics(settings.kafka, [runtime.topics(t) for t in SOURCE_TOPICS])
    if via_loop:
        records = await _through_loop(runtime)
    else:
        replay = Replay(
            kafka=settings.kafka,
            topics=[runtime.topics(t) for t in SOURCE_TOPICS],
            sessions=runtime.sessions,
            outbox=runtime.outbox,
            clock=runtime.clock,
        )
        replayed = await replay.run()
        records = replayed.records
        logger.info("replay outcomes: %s", replayed.outcomes)
    seconds = time.perf_counter() - started
    logger.info("rebuilt %s from %d records in %.1f s", schema, records, seconds)
    async with runtime.sessions() as session, session.begin():
        digest = await fact_digest(session)
    await runtime.engine.dispose()
    digest_seconds = time.perf_counter() - started - seconds
    return RebuildReport(schema, records, seconds, digest, digest_seconds)


async def _through_loop(runtime: ServiceRuntime) -> int:
    name = f"rebuild-{uuid.uuid4().hex[:8]}"
    loop = runtime.add_consumer(name, SOURCE_TOPICS, HANDLERS)
    # Nobody traces a rebuild; a span per event costs more than its handler.
    loop.trace_events = False
    task = asyncio.create_task(loop.run())
    try:
        return await _wait_until_consumed(loop, task)
    finally:
        loop.stop()
        await asyncio.gather(task, return_exceptions=True)


async def _recreate(settings: MetricsSettings) -> None:
    url = settings.database_url.get_secret_value()
    engine = create_engine(url, settings.database_schema, pool_size=1)
    async with engine.begin() as connection:
        schema = settings.database_schema
        await connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await engine.dispose()
    await upgrade_async(MIGRATIONS, url, settings.database_schema)


async def end_offsets(consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
    """The offset after the last record of every subscribed partition, now."""
    partitions = [
        TopicPartition(topic, p)
        for topic in sorted(consumer.subscription())
        for p in sorted(consumer.partitions_for_topic(topic) or ())
    ]
    found: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
    return {tp: offset for tp, offset in found.items() if offset > 0}


async def _wait_until_consumed(loop: ConsumerLoop, task: asyncio.Task[None]) -> int:
    """Wait until the loop committed up to the ends seen once it was assigned."""
    ends: dict[TopicPartition, int] | None = None
    while not task.done():
        await asyncio.sleep(_POLL_SECONDS)
        # The loop makes its Kafka client when it starts running.
        consumer: AIOKafkaConsumer | None = getattr(loop, "consumer", None)
        if consumer is None or not loop.assigned:
            continue
        if ends is None:
            ends = await end_offsets(consumer)
            logger.info("rebuild replays %d records", sum(ends.values()))
        committed = [await consumer.committed(tp) or 0 for tp in ends]
        if all(c >= end for c, end in zip(committed, ends.values(), strict=True)):
            return sum(ends.values())
    task.result()
    raise RuntimeError("the rebuild consumer stopped before reaching the end")


async def fact_digest(session: AsyncSession) -> dict[str, str]:
    """Row count and an order-independent checksum of every fact table."""
    digest: dict[str, str] = {}
    for table in FACT_TABLES:
        alias = table.name
        row = (
            await session.execute(
                sa.text(
                    f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' "  # noqa: S608
                    f"ORDER BY t::text), '')) FROM {alias} t"
                )
            )
        ).one()
        digest[alias] = f"{row[0]}:{row[1]}"
    return digest


async def digest_of(settings: MetricsSettings) -> dict[str, str]:
    """The fact digest of the schema ``settings`` point at."""
    url = settings.database_url.get_secret_value()
    engine = create_engine(url, settings.database_schema, pool_size=1)
    try:
        async with session_factory(engine)() as session, session.begin():
            return await fact_digest(session)
    finally:
        await engine.dispose()
