"""Bulk replay for rebuilds: the live handlers, without the per-event machinery.

The live consumer claims each event in the inbox, traces it and observes it, which a
rebuild does not need: it writes into a fresh schema nobody reads yet, and every fact
table is an insert-only set keyed by the fact, so a record read twice (a rebalance
mid-replay) adds nothing. The replay therefore decodes a large batch, runs the same
handlers on one session and commits once per batch; it never commits offsets and
never publishes: records the live consumer dead-lettered are counted and logged here.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from arbor_metrics.handlers import HANDLERS
from arbor_shared.clock import Clock
from arbor_shared.events import model_for
from arbor_shared.events.envelope import Envelope
from arbor_shared.kafka.clients import create_consumer
from arbor_shared.kafka.consumer import Context
from arbor_shared.kafka.outbox import Outbox
from arbor_shared.settings import KafkaSettings

logger = logging.getLogger(__name__)

_BATCH_RECORDS = 5_000
_IN_FLIGHT = 2


@dataclass(frozen=True)
class Replayed:
    records: int
    outcomes: dict[str, int]


@dataclass
class Replay:
    """Reads ``topics`` from the start to their current ends into ``sessions``."""

    kafka: KafkaSettings
    topics: list[str]
    sessions: async_sessionmaker[AsyncSession]
    outbox: Outbox
    clock: Clock

    async def run(self) -> Replayed:
        consumer = create_consumer(
            self.kafka.model_copy(update={"max_poll_records": _BATCH_RECORDS}),
            group_id=f"arbor.metrics.replay.{uuid.uuid4().hex[:12]}",
            client_id="metrics-replay",
            topics=self.topics,
        )
        await consumer.start()
        try:
            return await self._consume(consumer)
        finally:
            await consumer.stop()

    async def _consume(self, consumer: AIOKafkaConsumer) -> Replayed:
        outcomes: Counter[str] = Counter()
        ends: dict[TopicPartition, int] | None = None
        in_flight: set[asyncio.Task[Counter[str]]] = set()
        while ends is None or not await _reached(consumer, ends):
            batch = await consumer.getmany(timeout_ms=1_000)
            if ends is None and consumer.assignment():
                ends = await consumer.end_offsets(sorted(consumer.assignment()))
                logger.info("replaying %d records", sum(ends.values()))
            records = [r for part in batch.values() for r in part]
            if not records:
                continue
            # Facts commute, so batches may commit in any order: decode the next
            # batch while the previous one waits for PostgreSQL.
            if len(in_flight) >= _IN_FLIGHT:
                done, in_flight = await asyncio.wait(
                    in_flight, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    outcomes.update(task.result())
            in_flight.add(asyncio.create_task(self._apply(records)))
        for counted in await asyncio.gather(*in_flight):
            outcomes.update(counted)
        return Replayed(sum(ends.values()), dict(outcomes))

    async def _apply(
        self, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> Counter[str]:
        outcomes: Counter[str] = Counter()
        started = time.perf_counter()
        async with self.sessions() as session, session.begin():
            for record in records:
                outcomes[await self._apply_one(session, record)] += 1
        logger.debug(
            "replayed %d records in %.3f s", len(records), time.perf_counter() - started
        )
        return outcomes

    async def _apply_one(
        self, session: AsyncSession, record: ConsumerRecord[bytes, bytes]
    ) -> str:
        try:
            envelope = Envelope.from_headers(record.headers)
            handler = HANDLERS.get(envelope.type)
            if handler is None:
                return "ignored"
            data = model_for(envelope.type).model_validate_json(record.value or b"")
        except (ValueError, LookupError) as exc:
            # The live consumer dead-lettered this record when it first came.
            logger.warning(
                "replay skips undecodable record %s:%d:%d: %s",
                record.topic,
                record.partition,
                record.offset,
                exc,
            )
            return "skipped"
        await handler(Context(session, self.outbox, self.clock, envelope), data)
        return "applied"


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True
