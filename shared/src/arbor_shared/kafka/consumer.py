"""The consumer loop every service runs: inbox, handler, commit, then offsets.

Per batch: open one transaction, claim each record's key in the inbox, apply the
handlers, commit, and only then commit the offsets (RELIABILITY P2). A record that
cannot be decoded, fails validation or makes its handler raise a non-transient error
goes to the dead-letter topic through the outbox, in the same transaction, so the batch
moves on and nothing is dropped (P6). A transient failure retries the whole batch with
backoff and never skips ahead, which would break per-customer order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from arbor_shared.clock import Clock
from arbor_shared.events import EventData, model_for
from arbor_shared.events.envelope import Envelope
from arbor_shared.failpoints import failpoint
from arbor_shared.kafka.classify import PoisonRecordError, is_transient
from arbor_shared.kafka.outbox import DeadLetter, Outbox
from arbor_shared.observability import PipelineMetrics
from arbor_shared.retry import Backoff
from arbor_shared.telemetry import consumer_span

logger = logging.getLogger(__name__)

MAX_RECORD_BYTES = 512 * 1024


@dataclass(frozen=True)
class Context:
    """What a handler gets besides the event: its transaction and where to publish."""

    session: AsyncSession
    outbox: Outbox
    clock: Clock
    envelope: Envelope


Handler = Callable[[Context, Any], Awaitable[None]]


@dataclass
class _Item:
    record: ConsumerRecord[bytes, bytes]
    key: str
    envelope: Envelope | None = None
    data: EventData | None = None
    poison: tuple[str, str] | None = None
    redrive_for: str | None = None


@dataclass
class ConsumerLoop:
    """Consumes ``topics`` as ``name`` and applies ``handlers`` keyed by event type."""

    name: str
    make_consumer: Callable[[], AIOKafkaConsumer]
    handlers: Mapping[str, Handler]
    sessions: async_sessionmaker[AsyncSession]
    inbox: sa.Table
    outbox: Outbox
    clock: Clock
    metrics: PipelineMetrics
    on_batch_committed: Callable[[], Awaitable[None]] | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    assigned: bool = False
    consumer: AIOKafkaConsumer = field(init=False)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Consume until stopped; a batch is applied and committed before the next."""
        # aiokafka binds a client to the running event loop, so it is made here.
        self.consumer = self.make_consumer()
        await self.consumer.start()
        logger.info(
            "consumer %s started on %s", self.name, self.consumer.subscription()
        )
        try:
            while not self._stopping.is_set():
                batch = await self.consumer.getmany(timeout_ms=500)
                self.assigned = bool(self.consumer.assignment())
                records = [r for part in batch.values() for r in part]
                if records:
                    await self._apply_until_done(records)
                    offsets = {tp: rs[-1].offset + 1 for tp, rs in batch.items()}
                    await self._commit_offsets(offsets)
                    self._report_lag(offsets)
        finally:
            await self.consumer.stop()
            logger.info("consumer %s stopped", self.name)

    async def _apply_until_done(
        self, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> None:
        backoff = Backoff()
        items = [self._decode(record) for record in records]
        while True:
            try:
                started = time.perf_counter()
                await self._apply(items)
                self.metrics.batch_seconds.observe(time.perf_counter() - started)
                return
            except _HandlerFailedError as failure:
                failure.item.poison = ("handler_error", repr(failure.__cause__))
            except Exception as exc:  # noqa: BLE001 - loop boundary: retry the batch
                self.metrics.transient_failures.labels(stage="consume").inc()
                logger.warning(
                    "consumer %s batch of %d failed transiently (attempt %d), "
                    "retrying without committing offsets: %r",
                    self.name,
                    len(items),
                    backoff.attempts + 1,
                    exc,
                )
                await asyncio.sleep(backoff.next_delay())

    def _decode(self, record: ConsumerRecord[bytes, bytes]) -> _Item:
        coordinates = f"{record.topic}:{record.partition}:{record.offset}"
        redrive_for = _redrive_target(record)
        if redrive_for is not None and redrive_for != self.name:
            # Redriven for another consumer group; this one applied the original.
            return _Item(record, f"redrive:{coordinates}", redrive_for=redrive_for)
        try:
            envelope = Envelope.from_headers(record.headers)
        except ValueError as exc:
            return _Item(
                record, f"bad:{coordinates}", poison=("bad_envelope", str(exc))
            )
        item = _Item(record, envelope.id, envelope=envelope, redrive_for=redrive_for)
        try:
            item.data = _parse(record, envelope)
        except PoisonRecordError as exc:
            item.poison = (exc.reason, str(exc))
        return item

    async def _apply(self, items: list[_Item]) -> None:
        async with self.sessions() as session, session.begin():
            mine = [item for item in items if item.redrive_for in (None, self.name)]
            await self._release_redriven(session, mine)
            claimed = await self._claim(session, mine)
            for item in items:
                if item.redrive_for not in (None, self.name):
                    self._count(item, "not_addressed")
                    continue
                if item.key not in claimed:
                    self._count(item, "duplicate")
                    continue
                claimed.discard(item.key)
                await self._apply_one(session, item)
            failpoint("consumer_before_commit")
        failpoint("consumer_after_commit")
        if self.on_batch_committed is not None:
            await self.on_batch_committed()

    async def _release_redriven(
        self, session: AsyncSession, items: list[_Item]
    ) -> None:
        # A redriven record keeps its event id so that no other consumer applies it
        # twice; for the consumer it was redriven to, only a dead-lettered claim is
        # released, never one whose effect was applied.
        keys = [item.key for item in items if item.redrive_for == self.name]
        if keys:
            await session.execute(
                sa.delete(self.inbox).where(
                    self.inbox.c.consumer == self.name,
                    self.inbox.c.event_key.in_(keys),
                    self.inbox.c.outcome == "dead_lettered",
                )
            )

    async def _claim(self, session: AsyncSession, items: list[_Item]) -> set[str]:
        if not items:
            return set()
        rows = [
            {"consumer": self.name, "event_key": item.key, "outcome": _outcome(item)}
            for item in items
        ]
        statement = (
            insert(self.inbox)
            .values(rows)
            .on_conflict_do_nothing()
            .returning(self.inbox.c.event_key)
        )
        return set((await session.scalars(statement)).all())

    async def _apply_one(self, session: AsyncSession, item: _Item) -> None:
        if item.poison is not None:
            await self._dead_letter(session, item, *item.poison)
            return
        assert item.envelope is not None
        assert item.data is not None
        handler = self.handlers.get(item.envelope.type)
        if handler is None:
            self._count(item, "ignored")
            return
        await self._run_handler(session, item, handler)

    async def _run_handler(
        self, session: AsyncSession, item: _Item, handler: Handler
    ) -> None:
        assert item.envelope is not None
        record = item.record
        attributes: dict[str, str | int] = {
            "messaging.system": "kafka",
            "messaging.destination.name": record.topic,
            "messaging.kafka.partition": record.partition,
            "messaging.kafka.offset": record.offset,
            "messaging.message.id": item.envelope.id,
            "messaging.consumer.group.name": self.name,
        }
        started = time.perf_counter()
        with consumer_span(
            f"process {item.envelope.type}", item.envelope.trace_parent, attributes
        ):
            try:
                await handler(
                    Context(session, self.outbox, self.clock, item.envelope), item.data
                )
            except Exception as exc:
                if is_transient(exc):
                    raise
                raise _HandlerFailedError(item) from exc
        elapsed = time.perf_counter() - started
        self.metrics.handler_seconds.labels(event_type=item.envelope.type).observe(
            elapsed
        )
        self._count(item, "applied")
        age = self.clock.now() - item.envelope.time
        self.metrics.last_event_age.set(max(age.total_seconds(), 0.0))

    async def _dead_letter(
        self, session: AsyncSession, item: _Item, reason: str, error: str
    ) -> None:
        record = item.record
        logger.warning(
            "dead-lettering record %s:%d:%d (event %s) in %s: %s: %s",
            record.topic,
            record.partition,
            record.offset,
            item.key,
            self.name,
            reason,
            error,
        )
        letter = DeadLetter(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers=record.headers,
            reason=reason,
            error=error,
            consumer=self.name,
        )
        await self.outbox.dead_letter(session, letter)
        self.metrics.dead_lettered.labels(topic=record.topic, reason=reason).inc()
        self._count(item, "dead_lettered")

    async def _commit_offsets(self, offsets: Mapping[TopicPartition, int]) -> None:
        try:
            await self.consumer.commit(dict(offsets))
        except (CommitFailedError, KafkaError) as exc:
            # The partitions moved to another member mid-batch; it will redeliver
            # these records and the inbox turns them into duplicates.
            logger.warning("consumer %s could not commit offsets: %r", self.name, exc)

    def _report_lag(self, offsets: Mapping[TopicPartition, int]) -> None:
        for tp, committed in offsets.items():
            end = self.consumer.highwater(tp)
            if end is not None:
                self.metrics.consumer_lag.labels(
                    topic=tp.topic, partition=str(tp.partition)
                ).set(max(end - committed, 0))

    def _count(self, item: _Item, outcome: str) -> None:
        event_type = item.envelope.type if item.envelope else "unknown"
        self.metrics.consumed.labels(
            topic=item.record.topic, event_type=event_type, outcome=outcome
        ).inc()


class _HandlerFailedError(Exception):
    def __init__(self, item: _Item) -> None:
        super().__init__(item.key)
        self.item = item


REDRIVE_HEADER = "arbor_redrive_for"


def _redrive_target(record: ConsumerRecord[bytes, bytes]) -> str | None:
    for name, value in record.headers:
        if name == REDRIVE_HEADER:
            return str(value.decode(errors="replace"))
    return None


def _outcome(item: _Item) -> str:
    return "dead_lettered" if item.poison else "applied"


def _parse(record: ConsumerRecord[bytes, bytes], envelope: Envelope) -> EventData:
    if record.value is None:
        raise PoisonRecordError("empty_value", "the record has no value")
    if len(record.value) > MAX_RECORD_BYTES:
        raise PoisonRecordError(
            "oversized", f"{len(record.value)} bytes exceeds {MAX_RECORD_BYTES}"
        )
    try:
        model = model_for(envelope.type)
    except LookupError as exc:
        raise PoisonRecordError("unknown_type", str(exc)) from exc
    try:
        return model.model_validate_json(record.value)
    except ValueError as exc:
        raise PoisonRecordError("invalid_data", str(exc)) from exc
