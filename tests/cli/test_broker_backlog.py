"""The feed gate against the real broker: a consumer group half way through a topic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from arbor_cli.backlog import BrokerLag
from arbor_cli.feed_gate import FeedGate
from arbor_shared import topics
from arbor_shared.kafka.clients import ensure_topics
from arbor_shared.topics import TopicNames
from tests.conftest import Namespace
from tests.support import WAIT_SECONDS, eventually

pytestmark = pytest.mark.integration

PER_PARTITION = 4


@pytest.fixture
async def invoices(namespace: Namespace) -> list[TopicPartition]:
    """The namespace's invoices topic, three partitions of four records each."""
    topic = TopicNames(namespace.name)(topics.INVOICES)
    await ensure_topics(namespace.kafka_settings(), [topic])
    producer = AIOKafkaProducer(bootstrap_servers=namespace.kafka.bootstrap)
    await producer.start()
    try:
        for partition in range(3):
            for n in range(PER_PARTITION):
                await producer.send_and_wait(topic, b"%d" % n, partition=partition)
    finally:
        await producer.stop()
    return [TopicPartition(topic, p) for p in range(3)]


Join = Callable[[str], Awaitable[AIOKafkaConsumer]]


@pytest.fixture
async def join(
    namespace: Namespace, invoices: list[TopicPartition]
) -> AsyncIterator[Join]:
    """Starts a member of the named group on the invoices topic, stopped afterwards."""
    members: list[AIOKafkaConsumer] = []

    async def start(group: str) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            invoices[0].topic,
            bootstrap_servers=namespace.kafka.bootstrap,
            group_id=f"{namespace.name}.{group}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        members.append(consumer)
        await eventually(lambda: _assigned(consumer))
        return consumer

    yield start
    for consumer in members:
        await consumer.stop()


async def _assigned(consumer: AIOKafkaConsumer) -> bool:
    await consumer.getmany(timeout_ms=100)
    return bool(consumer.assignment())


@pytest.fixture
async def dunning(join: Join, invoices: list[TopicPartition]) -> AIOKafkaConsumer:
    """A live arbor group that consumed all of partition 0 and one record of 1.

    Partition 2 is assigned to it and has no commit at all.
    """
    consumer = await join("arbor.dunning.facts")
    await consumer.commit({invoices[0]: PER_PARTITION, invoices[1]: 1})
    return consumer


def _lag(namespace: Namespace) -> BrokerLag:
    return BrokerLag(namespace.kafka.bootstrap, topic_prefix=namespace.name)


@pytest.mark.usefixtures("dunning")
async def test_lag_counts_what_each_arbor_group_has_not_committed(
    namespace: Namespace, join: Join
) -> None:
    await join("arbor.metrics.kpis")  # an arbor group that has committed nothing
    await join("audit")  # not an arbor service's group: not counted

    async with _lag(namespace) as lag:
        behind = await lag.records_behind()

    dunning_behind = 0 + (PER_PARTITION - 1) + PER_PARTITION
    assert behind == dunning_behind + 3 * PER_PARTITION


async def test_gate_returns_once_the_group_commits_to_the_end(
    namespace: Namespace, dunning: AIOKafkaConsumer, invoices: list[TopicPartition]
) -> None:
    async with FeedGate([_lag(namespace)], limit=0, poll_seconds=0.1) as gate:
        waiting = asyncio.create_task(gate.wait_for_services())
        await eventually(lambda: _paused(gate))
        await dunning.commit({p: PER_PARTITION for p in invoices})
        await asyncio.wait_for(waiting, WAIT_SECONDS)

    assert (gate.status.behind, gate.status.pauses, gate.status.gave_up) == (0, 1, 0)


async def _paused(gate: FeedGate) -> bool:
    return gate.status.paused_since is not None


async def test_gate_gives_up_after_its_bound_when_the_group_does_not_move(
    namespace: Namespace, dunning: AIOKafkaConsumer
) -> None:
    gate = FeedGate([_lag(namespace)], limit=0, stall_seconds=1, poll_seconds=0.1)

    async with gate:
        await asyncio.wait_for(gate.wait_for_services(), WAIT_SECONDS)

    assert (gate.status.behind, gate.status.gave_up) == (PER_PARTITION * 2 - 1, 1)
