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
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from prometheus_client import Histogram
from sqlalchemy.dialects.postgresql import ARRAY, insert
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
class _Tally:
    """Outcomes of one attempt at a batch, published once the batch has committed,
    so that a retried batch is counted once."""

    outcomes: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    last_applied: datetime | None = None

    def count(self, item: _Item, outcome: str) -> None:
        event_type = item.envelope.type if item.envelope else "unknown"
        self.outcomes[item.record.topic, event_type, outcome] += 1


@dataclass
class ConsumerLoop:
    """Consumes ``topics`` as ``name`` and applies ``handlers`` keyed by event type.

    ``trace_events`` opens a CONSUMER span per event, child of the producer's span;
    only a replay that nobody traces (a rebuild) turns it off.
    """

    name: str
    make_consumer: Callable[[], AIOKafkaConsumer]
    handlers: Mapping[str, Handler]
    sessions: async_sessionmaker[AsyncSession]
    inbox: sa.Table
    outbox: Outbox
    clock: Clock
    metrics: PipelineMetrics
    on_batch_committed: Callable[[], Awaitable[None]] | None = None
    trace_events: bool = True
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    assigned: bool = False
    consumer: AIOKafkaConsumer = field(init=False)
    _timers: dict[str, Histogram] = field(default_factory=dict, init=False)

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
        redrive_for = _redrive_target(record)
        if redrive_for is not None and redrive_for != self.name:
            # Redriven for another consumer group; this one applied the original.
            return _Item(
                record, f"redrive:{_coordinates(record)}", redrive_for=redrive_for
            )
        try:
            envelope = Envelope.from_headers(record.headers)
        except ValueError as exc:
            key = f"bad:{_coordinates(record)}"
            return _Item(record, key, poison=("bad_envelope", str(exc)))
        item = _Item(record, envelope.id, envelope=envelope, redrive_for=redrive_for)
        try:
            item.data = _parse(record, envelope)
        except PoisonRecordError as exc:
            item.poison = (exc.reason, str(exc))
        return item

    async def _apply(self, items: list[_Item]) -> None:
        tally = _Tally()
        async with self.sessions() as session, session.begin():
            mine = [item for item in items if item.redrive_for in (None, self.name)]
            await self._release_redriven(session, mine)
            claimed = await self._claim(session, mine)
            for item in items:
                if item.redrive_for not in (None, self.name):
                    tally.count(item, "not_addressed")
                    continue
                if item.key not in claimed:
                    tally.count(item, "duplicate")
                    continue
                claimed.discard(item.key)
                await self._apply_one(session, item, tally)
            failpoint("consumer_before_commit")
        failpoint("consumer_after_commit")
        self._publish(tally)
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
        # Keys already in the inbox come back missing, and so does every repeat of a
        # key within the batch after its first: ON CONFLICT DO NOTHING skips a row
        # that conflicts with one the same statement inserted.
        if not items:
            return set()
        parameters = {
            "consumer": self.name,
            "keys": [item.key for item in items],
            "outcomes": [_outcome(item) for item in items],
        }
        found = await session.scalars(_claim_statement(self.inbox), parameters)
        return set(found.all())

    async def _apply_one(
        self, session: AsyncSession, item: _Item, tally: _Tally
    ) -> None:
        if item.poison is not None:
            await self._dead_letter(session, item, *item.poison)
            tally.count(item, "dead_lettered")
            return
        assert item.envelope is not None
        handler = self.handlers.get(item.envelope.type)
        if handler is None:
            tally.count(item, "ignored")
            return
        await self._run_handler(session, item, handler)
        tally.count(item, "applied")
        tally.last_applied = item.envelope.time

    async def _run_handler(
        self, session: AsyncSession, item: _Item, handler: Handler
    ) -> None:
        envelope = item.envelope
        assert envelope is not None
        context = Context(session, self.outbox, self.clock, envelope)
        started = time.perf_counter()
        if self.trace_events:
            name = f"process {envelope.type}"
            with consumer_span(name, envelope.trace_parent, {}) as span:
                if span.is_recording():
                    span.set_attributes(self._span_attributes(item))
                await _call(handler, context, item)
        else:
            await _call(handler, context, item)
        self._timer(envelope.type).observe(time.perf_counter() - started)

    def _span_attributes(self, item: _Item) -> dict[str, str | int]:
        record = item.record
        assert item.envelope is not None
        return {
            "messaging.system": "kafka",
            "messaging.destination.name": record.topic,
            "messaging.kafka.partition": record.partition,
            "messaging.kafka.offset": record.offset,
            "messaging.message.id": item.envelope.id,
            "messaging.consumer.group.name": self.name,
        }

    def _timer(self, event_type: str) -> Histogram:
        # Resolving a labelled child validates and locks on every call; the set of
        # event types a loop handles is small and fixed.
        timer = self._timers.get(event_type)
        if timer is None:
            timer = self.metrics.handler_seconds.labels(event_type=event_type)
            self._timers[event_type] = timer
        return timer

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

    def _publish(self, tally: _Tally) -> None:
        for (topic, event_type, outcome), count in tally.outcomes.items():
            self.metrics.consumed.labels(
                topic=topic, event_type=event_type, outcome=outcome
            ).inc(count)
        if tally.last_applied is not None:
            age = self.clock.now() - tally.last_applied
            self.metrics.last_event_age.set(max(age.total_seconds(), 0.0))


async def _call(handler: Handler, context: Context, item: _Item) -> None:
    try:
        await handler(context, item.data)
    except Exception as exc:
        if is_transient(exc):
            raise
        raise _HandlerFailedError(item) from exc


@functools.cache
def _claim_statement(inbox: sa.Table) -> sa.Insert:
    """Claim a batch of keys in one statement whose SQL is the same for every batch
    size, so SQLAlchemy compiles it once and the server keeps it prepared."""
    claims = (
        sa.func.unnest(
            sa.bindparam("keys", type_=ARRAY(sa.Text)),
            sa.bindparam("outcomes", type_=ARRAY(sa.Text)),
        )
        .table_valued("event_key", "outcome")
        .render_derived(name="claims")
    )
    consumer = sa.bindparam("consumer", type_=sa.Text)
    rows = sa.select(consumer, claims.c.event_key, claims.c.outcome)
    return (
        insert(inbox)
        .from_select(["consumer", "event_key", "outcome"], rows)
        .on_conflict_do_nothing()
        .returning(inbox.c.event_key)
    )


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


def _coordinates(record: ConsumerRecord[bytes, bytes]) -> str:
    return f"{record.topic}:{record.partition}:{record.offset}"


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
