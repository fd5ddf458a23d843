"""The outbox relay: publishes committed outbox rows, then deletes them.

Rows are deleted only after the broker acknowledged them (``acks=all``), so a crash in
between publishes an event twice and never loses one; consumers deduplicate by event id.
Sent rows are not kept: the topic holds every event for as long as it retains them.
One relay per service sends at a time, under a transaction-scoped advisory lock, so the
outbox order (and with it every customer's order) survives several replicas.

After a failed or stalled send the producer is replaced: aiokafka's idempotent producer
can be left with a gap in its sequence numbers (``OutOfOrderSequenceNumber`` for ever)
or with batches it never expires while a partition leader is unreachable. A fresh
producer may publish some rows a second time, which consumers absorb by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from operator import itemgetter

import asyncpg
import orjson
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from aiokafka.producer.message_accumulator import BatchBuilder
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from arbor_shared.failpoints import failpoint
from arbor_shared.kafka.outbox import headers_from_json
from arbor_shared.observability import PipelineMetrics
from arbor_shared.retry import Backoff

logger = logging.getLogger(__name__)

_IDLE_POLL_SECONDS = 0.25
# A send not acknowledged within this long makes the relay report unhealthy, so
# readiness turns 503 while the broker is unreachable.
_STALL_SECONDS = 20.0
# A send still unacknowledged after this long is abandoned and retried afresh.
_SEND_TIMEOUT_SECONDS = 60.0
# Counting the backlog reads every unsent row; while it is large, once a second is
# enough for a gauge scraped every few seconds.
_COUNT_EVERY_SECONDS = 1.0
# Woken by a commit, the relay waits this long for the commits that follow it: at
# a few hundred single-event transactions a second, a round for each cost more CPU
# than the requests themselves, and the wait is far below any consumer's deadline.
_LINGER_SECONDS = 0.005


class OutboxRelay:
    """Moves outbox rows to Kafka in commit order."""

    def __init__(
        self,
        *,
        table: sa.Table,
        sessions: async_sessionmaker[AsyncSession],
        make_producer: Callable[[], AIOKafkaProducer],
        metrics: PipelineMetrics,
        wakeup: asyncio.Event,
        lock_name: str,
        batch_size: int = 1000,
    ) -> None:
        self._table = table
        self._sessions = sessions
        self._make_producer = make_producer
        self._producer: AIOKafkaProducer | None = None
        self._send_started: float | None = None
        self._failing = False
        self._metrics = metrics
        self._wakeup = wakeup
        # Built once: putting the function call together anew cost each round of
        # a busy single-event ingest more than reading its rows.
        self._lock = sa.select(
            sa.func.pg_try_advisory_xact_lock(zlib.crc32(lock_name.encode()))
        )
        self._batch_size = batch_size
        self._stopping = asyncio.Event()
        self._placer = KeyPlacer()
        # Rows are read and marked through the driver: through the ORM, each round
        # decoded every row's headers with the standard JSON module and marked the
        # rows with a statement of a thousand parameters, compiled and planned anew.
        # One statement takes the rows and deletes them; the deletion commits only
        # after the broker acknowledged every row, and a failed send rolls it back.
        # Deleting costs PostgreSQL half what marking the rows sent did, and spares
        # purging them later.
        self._take_unsent = (
            f"DELETE FROM {table.name} WHERE seq IN ("  # noqa: S608
            f"SELECT seq FROM {table.name} ORDER BY seq LIMIT $1) "
            "RETURNING seq, topic, key, value, headers::text AS headers"
        )
        self._count_unsent = f"SELECT count(*) FROM {table.name}"  # noqa: S608
        self._counted_at = -_COUNT_EVERY_SECONDS

    @property
    def healthy(self) -> bool:
        """False after a failed round, or while a send waits too long for its ack."""
        started = self._send_started
        stalled = started is not None and time.monotonic() - started > _STALL_SECONDS
        return not self._failing and not stalled

    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        """Relay until stopped; broker or database outages are retried forever."""
        try:
            await self._relay_until_stopped()
        finally:
            await self._discard_producer()

    async def _relay_until_stopped(self) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                sent = await self.relay_once()
                self._failing = False
                backoff.reset()
            except Exception as exc:  # noqa: BLE001 - loop boundary: never skip
                self._failing = True
                self._metrics.transient_failures.labels(stage="relay").inc()
                logger.warning("outbox relay failed, retrying: %r", exc)
                await self._discard_producer()
                await self._refresh_backlog()
                await self._sleep(backoff.next_delay())
                continue
            if sent < self._batch_size:
                await self._wait_for_work()

    async def relay_once(self) -> int:
        """Send one batch of unsent rows; return how many were sent."""
        async with self._sessions() as session, session.begin():
            locked = await session.scalar(self._lock)
            if not locked:
                return 0
            driver = await _driver(session)
            taken = await driver.fetch(self._take_unsent, self._batch_size)
            # RETURNING keeps no order; the outbox's is the order to publish in.
            rows = sorted(taken, key=itemgetter("seq"))
            if rows:
                await self._send(rows)
                failpoint("relay_after_ack")
            backlog = await self._backlog_after(driver, len(rows))
        if backlog is not None:
            self._metrics.outbox_backlog.set(backlog)
        return len(rows)

    async def _backlog_after(
        self, driver: asyncpg.Connection, taken: int
    ) -> int | None:
        """The rows left after a round, or None while the last count is fresh."""
        # A round that read fewer rows than it may read has taken every row
        # committed before it: the backlog it saw is empty, and counting it again
        # would cost every round one more statement.
        if taken < self._batch_size:
            return 0
        now = time.monotonic()
        if now - self._counted_at < _COUNT_EVERY_SECONDS:
            return None
        self._counted_at = now
        counted: int = await driver.fetchval(self._count_unsent)
        return counted

    async def _refresh_backlog(self) -> None:
        # The gauge must show the backlog growing during an outage, not a stale 0.
        with contextlib.suppress(Exception):
            async with self._sessions() as session:
                backlog = await session.scalar(sa.text(self._count_unsent))
            self._metrics.outbox_backlog.set(backlog or 0)

    async def _send(self, rows: Sequence[asyncpg.Record]) -> None:
        producer = await self._ready_producer()
        self._send_started = time.monotonic()
        try:
            place = await self._placer.placed(producer, {r["topic"] for r in rows})
            acks = [
                await producer.send_batch(batch, topic, partition=partition)
                for (topic, partition), batch in _record_batches(producer, place, rows)
            ]
            await asyncio.wait_for(asyncio.gather(*acks), _SEND_TIMEOUT_SECONDS)
        finally:
            self._send_started = None
        for topic, count in Counter(row["topic"] for row in rows).items():
            self._metrics.produced.labels(topic=topic).inc(count)

    async def _ready_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = self._make_producer()
            await producer.start()
            self._producer = producer
        return self._producer

    async def _discard_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def _wait_for_work(self) -> None:
        try:
            await asyncio.wait_for(self._wakeup.wait(), _IDLE_POLL_SECONDS)
        except TimeoutError:
            pass  # the idle poll: nothing committed that a linger would gather
        else:
            await self._sleep(_LINGER_SECONDS)
        self._wakeup.clear()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


def _record_batches(
    producer: AIOKafkaProducer,
    place: Callable[[str, bytes | None], int],
    rows: Sequence[asyncpg.Record],
) -> Iterator[tuple[tuple[str, int], BatchBuilder]]:
    """The rows as record batches per partition, each partition's rows in order.

    One batch, and one future, per partition instead of per record: the per-record
    ``send`` spent more on its future and bookkeeping than on the record itself.
    """
    filling: dict[tuple[str, int], BatchBuilder] = {}
    for row in rows:
        key = row["key"].encode() if row["key"] is not None else None
        where = (row["topic"], place(row["topic"], key))
        record = {
            "key": key,
            "value": row["value"],
            "timestamp": None,
            "headers": headers_from_json(orjson.loads(row["headers"])),
        }
        batch = filling.get(where)
        if batch is None:
            batch = filling[where] = producer.create_batch()
        if batch.append(**record) is None:
            # Full, and closed by the refusal; a fresh batch takes any one record.
            yield where, batch
            batch = filling[where] = producer.create_batch()
            batch.append(**record)
    for where, batch in filling.items():
        batch.close()
        yield where, batch


async def _driver(session: AsyncSession) -> asyncpg.Connection:
    # Called after the session's first statement, so inside its transaction.
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    return driver


# Keys hashed and remembered before the memory is cleared: far more customers than
# one relay sees in a burst, a few megabytes at most.
_KEYS_REMEMBERED = 100_000


class KeyPlacer:
    """Chooses each keyed record's partition exactly as aiokafka's default would.

    The default partitioner hashes the key (murmur2, in pure Python) on every send:
    a quarter of the relay's time per record, spent on a handful of customer ids
    over and over. The hash of a key never changes, so it is remembered; the
    partition is still taken from the topic's current partitions, which keeps one
    customer's events in one partition (RELIABILITY P4) just as before.
    """

    def __init__(self) -> None:
        self._hashes: dict[bytes, int] = {}

    async def placed(
        self, producer: AIOKafkaProducer, topics: set[str]
    ) -> Callable[[str, bytes | None], int]:
        """A function giving the partition of (topic, key).

        A record without a key goes to a random partition, as aiokafka's default
        partitioner sends it.
        """
        # Sorted, as the default partitioner receives them.
        partitions: dict[str, list[int]] = {
            t: sorted(await producer.partitions_for(t)) for t in topics
        }

        def place(topic: str, key: bytes | None) -> int:
            if key is None:
                return random.choice(partitions[topic])  # noqa: S311 - spread, not secrecy
            return self.partition(key, partitions[topic])

        return place

    def partition(self, key: bytes, partitions: list[int]) -> int:
        """The partition of ``key`` among ``partitions`` (sorted partition ids)."""
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= _KEYS_REMEMBERED:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return partitions[hashed % len(partitions)]
