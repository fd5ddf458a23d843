"""RELIABILITY F5, F6, F11: consumer replicas paused, rolled and replayed.

Only consumer processes fail here, so these tests use the session's broker and
database like any other; the effects app (tests/faults/effects_app.py) is the
consumer, fed straight through the topic as another service's relay would feed it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncEngine

from arbor_shared.db import create_engine
from arbor_shared.events import InvoiceIssued
from tests.conftest import Namespace
from tests.e2e.processes import ServiceProcess
from tests.faults.harness import (
    TOPIC_PARTITIONS,
    all_applied,
    applications,
    effects_group,
    effects_process,
    invoices_topic,
    pause,
    resume,
    wait_committed,
)
from tests.support import create_topics, encode, eventually

pytestmark = pytest.mark.faults

CUSTOMERS = 7
APPLY_TIMEOUT_SECONDS = 120.0
# The shared consumer's session timeout is 20 s (arbor_shared.kafka.clients); the
# takeover needs that plus a rebalance.
TAKEOVER_TIMEOUT_SECONDS = 90.0
PRODUCE_INTERVAL_SECONDS = 0.02


def _record(number: int) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Invoice ``number`` of customer ``number % CUSTOMERS``, keyed by customer."""
    data = InvoiceIssued(
        customer_id=f"cus-{number % CUSTOMERS}",
        invoice_id=f"inv-{number}",
        currency="EUR",
        amount_minor=10_000 + number,
        issue_date=date(2024, 3, 1),
        due_date=date(2024, 3, 31),
        issued_at=datetime(2024, 3, 1, 8, tzinfo=UTC),
    )
    return encode(data, event_id=f"ev-inv-{number}")


class Publisher:
    """One idempotent producer writing invoices in number order."""

    def __init__(self, namespace: Namespace) -> None:
        self.topic = invoices_topic(namespace)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=namespace.kafka.bootstrap,
            acks="all",
            enable_idempotence=True,
        )
        self.published = 0
        self._stopping = asyncio.Event()

    async def publish(self, count: int) -> None:
        for _ in range(count):
            self.published += 1
            key, value, headers = _record(self.published)
            await self.producer.send_and_wait(
                self.topic, value=value, key=key, headers=headers
            )

    async def steadily(self) -> None:
        """Publish one invoice after another until :meth:`halt`."""
        while not self._stopping.is_set():
            await self.publish(1)
            await asyncio.sleep(PRODUCE_INTERVAL_SECONDS)

    def halt(self) -> None:
        self._stopping.set()

    def invoice_ids(self) -> set[str]:
        return {f"inv-{n}" for n in range(1, self.published + 1)}


@pytest.fixture
async def publisher(namespace: Namespace) -> AsyncIterator[Publisher]:
    await create_topics(namespace)
    publisher = Publisher(namespace)
    await publisher.producer.start()
    yield publisher
    await publisher.producer.stop()


@pytest.fixture
async def effects_engine(namespace: Namespace) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(namespace.postgres.url, namespace.schema("effects"))
    yield engine
    await engine.dispose()


@contextlib.contextmanager
def stopped_at_exit(processes: list[ServiceProcess]) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            if process.process is not None:
                resume(process)  # a paused process would ignore SIGTERM
            process.stop()


async def _all_applied(engine: AsyncEngine, expected: set[str]) -> None:
    await eventually(
        lambda: all_applied(engine, expected), timeout=APPLY_TIMEOUT_SECONDS
    )


async def test_paused_consumer_past_session_timeout_applies_nothing_twice(
    namespace: Namespace,
    publisher: Publisher,
    effects_engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    paused = effects_process(namespace, tmp_path, replica="paused")
    taker = effects_process(namespace, tmp_path, replica="taker")
    with stopped_at_exit([paused, taker]):
        paused.start()
        taker.start()
        await asyncio.gather(paused.wait_ready(), taker.wait_ready())
        await publisher.publish(30)
        await _all_applied(effects_engine, publisher.invoice_ids())

        # Frozen with its partitions: no heartbeats, so the group evicts it and
        # the other replica must take every partition over.
        pause(paused)
        await publisher.publish(30)
        await eventually(
            lambda: all_applied(effects_engine, publisher.invoice_ids()),
            timeout=TAKEOVER_TIMEOUT_SECONDS,
        )

        # Resumed, it still believes it owns its old partitions for a moment.
        resume(paused)
        await publisher.publish(30)
        await _all_applied(effects_engine, publisher.invoice_ids())
        await wait_committed(
            namespace.kafka.bootstrap, effects_group(namespace), publisher.published
        )
        applied = await applications(effects_engine)

    assert applied == dict.fromkeys(publisher.invoice_ids(), 1)


async def test_rolling_restart_under_load_applies_each_once_in_customer_order(
    namespace: Namespace,
    publisher: Publisher,
    effects_engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    replicas = [
        effects_process(namespace, tmp_path, replica=f"replica-{n}") for n in range(4)
    ]
    first, second, third, fourth = replicas
    with stopped_at_exit(replicas):
        first.start()
        second.start()
        await asyncio.gather(first.wait_ready(), second.wait_ready())
        load = asyncio.create_task(publisher.steadily())

        # SIGTERM one replica, start its successor, wait until it is ready; repeat.
        for old, new in ((first, third), (second, fourth)):
            await _published_more_than(publisher, publisher.published + 20)
            await _all_applied(effects_engine, publisher.invoice_ids())
            old.stop()
            new.start()
            await new.wait_ready()
        await _published_more_than(publisher, publisher.published + 20)
        publisher.halt()
        await asyncio.wait_for(load, 30)

        await _all_applied(effects_engine, publisher.invoice_ids())
        await wait_committed(
            namespace.kafka.bootstrap, effects_group(namespace), publisher.published
        )
        applied = await applications(effects_engine)
        order = await _applied_order(effects_engine)

    assert applied == dict.fromkeys(publisher.invoice_ids(), 1)
    assert all(numbers == sorted(numbers) for numbers in order.values())
    assert len(order) == CUSTOMERS


async def _published_more_than(publisher: Publisher, count: int) -> None:
    async def reached() -> bool:
        return publisher.published > count

    await eventually(reached)


async def _applied_order(engine: AsyncEngine) -> dict[str, list[int]]:
    """Per customer, the invoice numbers in the order they were applied."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.text("SELECT customer_id, invoice_id FROM applied_log ORDER BY id")
        )
        order: dict[str, list[int]] = defaultdict(list)
        for customer_id, invoice_id in rows:
            order[customer_id].append(int(invoice_id.removeprefix("inv-")))
    return dict(order)


async def test_replaying_the_group_into_a_fresh_schema_gives_identical_effects(
    namespace: Namespace,
    publisher: Publisher,
    effects_engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    replay_schema = namespace.schema("effects_replay")
    group = effects_group(namespace)
    original = effects_process(namespace, tmp_path, replica="original")
    replay = effects_process(
        namespace, tmp_path, replica="replay", schema=replay_schema
    )
    replay_engine = create_engine(namespace.postgres.url, replay_schema)
    # Published twice under the same event id, as a relay crash would (F2).
    await publisher.publish(60)
    key, value, headers = _record(7)
    await publisher.producer.send_and_wait(
        publisher.topic, value=value, key=key, headers=headers
    )
    records = publisher.published + 1
    try:
        with stopped_at_exit([original, replay]):
            original.start()
            await _all_applied(effects_engine, publisher.invoice_ids())
            await wait_committed(namespace.kafka.bootstrap, group, records)
            original.stop()

            # The operator's replay: the group rewound to the start, a fresh schema.
            await _rewind(namespace.kafka.bootstrap, group, publisher.topic)
            replay.start()
            await _all_applied(replay_engine, publisher.invoice_ids())
            await wait_committed(namespace.kafka.bootstrap, group, records)
            before = await applications(effects_engine)
            after = await applications(replay_engine)
            order_before = await _applied_order(effects_engine)
            order_after = await _applied_order(replay_engine)
    finally:
        await replay_engine.dispose()

    assert before == dict.fromkeys(publisher.invoice_ids(), 1)
    assert after == before
    assert order_after == order_before


async def _rewind(bootstrap: str, group: str, topic: str) -> None:
    """Commit offset 0 on every partition for ``group``, which has no members."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(TOPIC_PARTITIONS)]
        consumer.assign(partitions)
        await consumer.commit(dict.fromkeys(partitions, 0))
    finally:
        await consumer.stop()
