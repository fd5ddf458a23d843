"""Bulk replay for rebuilds: the live handlers, without the per-event machinery.

The live consumer claims each event in the inbox, traces it and observes it, which a
rebuild does not need: it writes into a fresh schema nobody reads yet, and every fact
table is an insert-only set keyed by the fact, so a record read twice adds nothing.
The replay therefore decodes a large batch, runs the same handlers on one session
and commits once per batch; it never commits offsets and never publishes: records
the live consumer dead-lettered are counted and logged here. It reads without a
consumer group: it owns every partition from offset 0 to the end it saw at the
start, so there is no group to join and no rebalance to sit out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from arbor_metrics.handlers import HANDLERS
from arbor_shared.clock import Clock
from arbor_shared.events import EventData, model_for
from arbor_shared.events.envelope import Envelope
from arbor_shared.kafka.clients import consumer_options
from arbor_shared.kafka.consumer import Context, Handler
from arbor_shared.kafka.outbox import Outbox
from arbor_shared.settings import KafkaSettings

logger = logging.getLogger(__name__)

_BATCH_RECORDS = 5_000
_FETCH_BYTES = 1_048_576
_IN_FLIGHT = 3


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
        consumer = AIOKafkaConsumer(
            *self.topics,
            **consumer_options(self.kafka, "metrics-replay"),
            max_poll_records=_BATCH_RECORDS,
            max_partition_fetch_bytes=_FETCH_BYTES,
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
            # batch while earlier ones wait for PostgreSQL (the writer takes its
            # row locks in key order, so concurrent batches cannot deadlock).
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
                decoded = _decode(record)
                if isinstance(decoded, str):
                    outcomes[decoded] += 1
                    continue
                envelope, handler, data = decoded
                await handler(Context(session, self.outbox, self.clock, envelope), data)
            outcomes["applied"] = len(records) - sum(outcomes.values())
        logger.debug(
            "replayed %d records in %.3f s", len(records), time.perf_counter() - started
        )
        return outcomes


def _decode(
    record: ConsumerRecord[bytes, bytes],
) -> tuple[Envelope, Handler, EventData] | str:
    """The handler's input, or why the record is not applied."""
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
    return envelope, handler, data


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True
