"""Reading dunning's own input topics from the start, for back-tests only.

A back-test must leave the live consumer alone: the reader joins no consumer group,
so it can neither commit offsets nor take partitions from the live members, and it
publishes nothing. It stops at the ends the topics had when it started, or after
``max_records``, whichever comes first, so one request cannot read without bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaTimeoutError

from arbor_shared import topics
from arbor_shared.events import EventData, model_for
from arbor_shared.events.envelope import Envelope
from arbor_shared.kafka.clients import consumer_options
from arbor_shared.settings import KafkaSettings
from arbor_shared.topics import TopicNames

logger = logging.getLogger(__name__)

# Where the facts that shape a past invoice live: customers' zones, issued invoices
# and the ledger's settlements.
REPLAYED_TOPICS = (topics.CUSTOMERS, topics.INVOICES, topics.LEDGER)
# A read that has not reached the topics' ends by then waits on an unwell broker;
# the caller is told to retry rather than given a partial past.
_DEADLINE_SECONDS = 30.0
_ASSIGNMENT_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class PastEvents:
    events: list[EventData]
    records_read: int
    reached_end: bool


async def read_past_events(
    settings: KafkaSettings,
    names: TopicNames,
    *,
    event_types: Collection[str],
    max_records: int,
) -> PastEvents:
    """The events of ``event_types`` on the replayed topics, oldest first per key."""
    consumer = AIOKafkaConsumer(**consumer_options(settings, "dunning-simulation"))
    try:
        # Inside the try: a start that fails half-way still holds connections.
        await consumer.start()
        ends = await _assign_from_start(consumer, [names(t) for t in REPLAYED_TOPICS])
        return await _read(consumer, ends, event_types, max_records)
    finally:
        await consumer.stop()


async def _assign_from_start(
    consumer: AIOKafkaConsumer, wanted: list[str]
) -> dict[TopicPartition, int]:
    # Subscribing only to topics that exist keeps a back-test from creating one
    # on a broker that creates topics on first use.
    known = await consumer.topics()
    existing = [t for t in wanted if t in known]
    if not existing:
        return {}
    # Without a group, aiokafka assigns every partition once metadata arrives.
    consumer.subscribe(existing)
    deadline = time.monotonic() + _DEADLINE_SECONDS
    while {tp.topic for tp in consumer.assignment()} != set(existing):
        _check(deadline, "partitions of the replayed topics were not assigned")
        await asyncio.sleep(_ASSIGNMENT_POLL_SECONDS)
    partitions = sorted(consumer.assignment())
    await consumer.seek_to_beginning(*partitions)
    ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
    return ends


async def _read(
    consumer: AIOKafkaConsumer,
    ends: dict[TopicPartition, int],
    event_types: Collection[str],
    max_records: int,
) -> PastEvents:
    events: list[EventData] = []
    read = 0
    deadline = time.monotonic() + _DEADLINE_SECONDS
    while read < max_records and await _behind(consumer, ends):
        _check(deadline, "the replayed topics were not read to their ends")
        batch = await consumer.getmany(timeout_ms=500, max_records=max_records - read)
        for tp, records in batch.items():
            for record in records:
                if record.offset >= ends[tp] or read >= max_records:
                    continue
                read += 1
                event = _decode(record, event_types)
                if event is not None:
                    events.append(event)
    reached = not await _behind(consumer, ends)
    logger.info("simulation read %d records, %d events", read, len(events))
    return PastEvents(events, read, reached)


def _decode(
    record: ConsumerRecord[bytes, bytes], event_types: Collection[str]
) -> EventData | None:
    try:
        envelope = Envelope.from_headers(record.headers)
        if envelope.type not in event_types:
            return None
        return model_for(envelope.type).model_validate_json(record.value or b"")
    except (ValueError, LookupError) as exc:
        # The live consumer dead-lettered this record when it came; a back-test
        # goes on without it, as the service did.
        logger.warning(
            "simulation skips undecodable record %s:%d:%d: %s",
            record.topic,
            record.partition,
            record.offset,
            exc,
        )
        return None


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


def _check(deadline: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise KafkaTimeoutError(f"{what} within {_DEADLINE_SECONDS:.0f} s")
