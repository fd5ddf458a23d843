"""The outbox relay: publishes committed outbox rows, then marks them sent.

Rows are marked only after the broker acknowledged them (``acks=all``), so a crash in
between publishes an event twice and never loses one; consumers deduplicate by event id.
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
import time
import zlib
from collections.abc import Callable, Sequence
from datetime import timedelta

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
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
_PURGE_EVERY = 200
_KEEP_SENT = timedelta(hours=1)

_OutboxRow = sa.Row[int, str, str | None, bytes, list[list[str]]]


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
        self._lock_id = zlib.crc32(lock_name.encode())
        self._batch_size = batch_size
        self._stopping = asyncio.Event()

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
        rounds = 0
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
            rounds += 1
            if rounds % _PURGE_EVERY == 0:
                await self._purge_sent()
            if sent < self._batch_size:
                await self._wait_for_work()

    async def relay_once(self) -> int:
        """Send one batch of unsent rows; return how many were sent."""
        async with self._sessions() as session, session.begin():
            locked = await session.scalar(
                sa.select(sa.func.pg_try_advisory_xact_lock(self._lock_id))
            )
            if not locked:
                return 0
            rows = (await session.execute(self._unsent())).all()
            if rows:
                await self._send(rows)
                failpoint("relay_after_ack")
                await session.execute(
                    sa.update(self._table)
                    .where(self._table.c.seq.in_([row.seq for row in rows]))
                    .values(sent_at=sa.func.now())
                )
            backlog = await session.scalar(self._backlog())
        self._metrics.outbox_backlog.set(backlog or 0)
        return len(rows)

    async def _refresh_backlog(self) -> None:
        # The gauge must show the backlog growing during an outage, not a stale 0.
        with contextlib.suppress(Exception):
            async with self._sessions() as session:
                backlog = await session.scalar(self._backlog())
            self._metrics.outbox_backlog.set(backlog or 0)

    def _unsent(self) -> sa.Select[int, str, str | None, bytes, list[list[str]]]:
        t = self._table
        return (
            sa.select(t.c.seq, t.c.topic, t.c.key, t.c.value, t.c.headers)
            .where(t.c.sent_at.is_(None))
            .order_by(t.c.seq)
            .limit(self._batch_size)
        )

    def _backlog(self) -> sa.Select[int]:
        return sa.select(sa.func.count()).where(self._table.c.sent_at.is_(None))

    async def _send(self, rows: Sequence[_OutboxRow]) -> None:
        producer = await self._ready_producer()
        self._send_started = time.monotonic()
        try:
            acks = [
                await producer.send(
                    row.topic,
                    value=row.value,
                    key=row.key.encode() if row.key is not None else None,
                    headers=headers_from_json(row.headers),
                )
                for row in rows
            ]
            await asyncio.wait_for(asyncio.gather(*acks), _SEND_TIMEOUT_SECONDS)
        finally:
            self._send_started = None
        for row in rows:
            self._metrics.produced.labels(topic=row.topic).inc()

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

    async def _purge_sent(self) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                sa.delete(self._table).where(
                    self._table.c.sent_at < sa.func.now() - _KEEP_SENT
                )
            )

    async def _wait_for_work(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), _IDLE_POLL_SECONDS)
        self._wakeup.clear()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
