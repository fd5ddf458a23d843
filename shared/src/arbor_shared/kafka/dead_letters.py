"""Reviewing and redriving dead letters.

A dead letter is the original record, unchanged, plus ``dlq_*`` headers saying which
consumer refused it and why. Redriving sends it back to its source topic addressed to
that consumer only (the ``arbor_redrive_for`` header): other consumer groups already
applied the original and skip it, and the event keeps its id.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from arbor_shared.kafka.clients import consumer_options, create_producer
from arbor_shared.kafka.consumer import REDRIVE_HEADER
from arbor_shared.settings import KafkaSettings
from arbor_shared.topics import DLQ_SUFFIX

_METADATA_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class DeadLetterRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    def header(self, name: str) -> str:
        for header, value in self.headers:
            if header == name:
                return value.decode(errors="replace")
        return ""

    @property
    def reason(self) -> str:
        return self.header("dlq_reason")

    @property
    def error(self) -> str:
        return self.header("dlq_error")

    @property
    def consumer(self) -> str:
        return self.header("dlq_consumer")

    @property
    def source(self) -> str:
        return (
            f"{self.header('dlq_source_topic')}:{self.header('dlq_source_partition')}"
            f":{self.header('dlq_source_offset')}"
        )

    @property
    def event_type(self) -> str:
        return self.header("ce_type") or "?"


async def read_dead_letters(
    settings: KafkaSettings, topic: str
) -> list[DeadLetterRecord]:
    """Every record currently in the dead-letter ``topic``, oldest first."""
    if not topic.endswith(DLQ_SUFFIX):
        raise ValueError(f"{topic} is not a dead-letter topic (*{DLQ_SUFFIX})")
    consumer = AIOKafkaConsumer(topic, **consumer_options(settings, "arbor-dlq-review"))
    await consumer.start()
    try:
        partitions = await _assigned(consumer)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        return await _read_until(consumer, ends)
    finally:
        await consumer.stop()


async def _assigned(consumer: AIOKafkaConsumer) -> list[TopicPartition]:
    # Without a group, aiokafka assigns every partition once metadata arrives.
    deadline = time.monotonic() + _METADATA_WAIT_SECONDS
    while not consumer.assignment():
        if time.monotonic() > deadline:
            raise TimeoutError("no partitions assigned: does the topic exist?")
        await asyncio.sleep(0.05)
    return sorted(consumer.assignment())


async def _read_until(
    consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]
) -> list[DeadLetterRecord]:
    letters: list[DeadLetterRecord] = []
    while await _behind(consumer, ends):
        batch = await consumer.getmany(timeout_ms=1000)
        letters.extend(
            DeadLetterRecord(
                r.topic, r.partition, r.offset, r.key, r.value or b"", list(r.headers)
            )
            for records in batch.values()
            for r in records
        )
    return sorted(letters, key=lambda d: (d.partition, d.offset))


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for partition, end in ends.items():
        if await consumer.position(partition) < end:
            return True
    return False


async def redrive(settings: KafkaSettings, letters: list[DeadLetterRecord]) -> int:
    """Send ``letters`` back to their source topics, for their consumer only."""
    producer = create_producer(settings, "arbor-dlq-redrive")
    await producer.start()
    try:
        for letter in letters:
            headers = [
                (name, value)
                for name, value in letter.headers
                if not name.startswith("dlq_") and name != REDRIVE_HEADER
            ]
            headers.append((REDRIVE_HEADER, letter.consumer.encode()))
            await producer.send_and_wait(
                letter.topic.removesuffix(DLQ_SUFFIX),
                value=letter.value,
                key=letter.key,
                headers=headers,
            )
    finally:
        await producer.stop()
    return len(letters)
