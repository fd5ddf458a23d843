"""Writing events to the outbox, inside the caller's transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Literal

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from arbor_shared.clock import Clock
from arbor_shared.events.base import EventData
from arbor_shared.events.envelope import Envelope
from arbor_shared.telemetry import current_traceparent
from arbor_shared.topics import TopicNames


class Trace(Enum):
    """Which trace an envelope carries when its caller names none."""

    CURRENT = "current"
    """The active span's, captured when the envelope is made."""


@dataclass(frozen=True)
class DeadLetter:
    """A record that cannot be processed, with where it came from and why."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]
    reason: str
    error: str
    consumer: str


class Outbox:
    """Adds events to the service's outbox table; the relay publishes them later."""

    def __init__(
        self,
        table: sa.Table,
        *,
        topics: TopicNames,
        source: str,
        clock: Clock,
    ) -> None:
        self._table = table
        self._topics = topics
        self._source = source
        self._clock = clock
        self.wakeup = asyncio.Event()

    async def publish(
        self,
        session: AsyncSession,
        data: EventData,
        *,
        event_id: str | None = None,
        causation_id: str | None = None,
        time: datetime | None = None,
    ) -> Envelope:
        """Stage one event; it is sent only if the session's transaction commits."""
        envelope = self.envelope(
            data, event_id=event_id, causation_id=causation_id, time=time
        )
        await self.publish_many(session, [(envelope, data)])
        return envelope

    def envelope(
        self,
        data: EventData,
        *,
        event_id: str | None = None,
        causation_id: str | None = None,
        time: datetime | None = None,
        trace_parent: str | Literal[Trace.CURRENT] | None = Trace.CURRENT,
    ) -> Envelope:
        """The envelope :meth:`publish` would give ``data``, carrying the trace.

        ``trace_parent`` spares capturing the active span's trace again when the
        caller already holds it (one capture for an event and all its facts);
        ``None`` says there is no trace to carry.
        """
        if trace_parent is Trace.CURRENT:
            trace_parent = current_traceparent()
        return Envelope.for_data(
            data,
            source=self._source,
            time=time or self._clock.now(),
            event_id=event_id,
            causation_id=causation_id,
            trace_parent=trace_parent,
        )

    async def publish_many(
        self, session: AsyncSession, events: Sequence[tuple[Envelope, EventData]]
    ) -> None:
        """Stage many events in one statement, in order."""
        await self.publish_encoded(
            session, [(e, data, data.model_dump_json().encode()) for e, data in events]
        )

    async def publish_encoded(
        self,
        session: AsyncSession,
        events: Sequence[tuple[Envelope, EventData, bytes]],
    ) -> None:
        """:meth:`publish_many` for events whose value (the data as JSON) is at hand."""
        if not events:
            return
        rows = [
            (
                envelope.id,
                self._topics(data.topic),
                data.customer_id,
                value,
                orjson.dumps(envelope.header_pairs()).decode(),
            )
            for envelope, data, value in events
        ]
        await _copy_rows(session, self._table, rows)
        self._wake_relay_on_commit(session)

    async def dead_letter(self, session: AsyncSession, letter: DeadLetter) -> None:
        """Stage a bad record for its dead-letter topic, reasons in the headers."""
        headers = [
            *letter.headers,
            ("dlq_reason", letter.reason.encode()),
            ("dlq_error", letter.error[:2000].encode()),
            ("dlq_consumer", letter.consumer.encode()),
            ("dlq_source_topic", letter.topic.encode()),
            ("dlq_source_partition", str(letter.partition).encode()),
            ("dlq_source_offset", str(letter.offset).encode()),
        ]
        await session.execute(
            sa.insert(self._table),
            {
                "event_id": f"dlq:{letter.topic}:{letter.partition}:{letter.offset}",
                "topic": letter.topic + ".dlq",
                "key": letter.key.decode(errors="replace") if letter.key else None,
                "value": letter.value or b"",
                "headers": _headers_to_json(headers),
            },
        )
        self._wake_relay_on_commit(session)

    def _wake_relay_on_commit(self, session: AsyncSession) -> None:
        # Woken at once, the relay would read before the rows are committed, find
        # nothing and run an empty round for every transaction; a rolled-back
        # transaction has nothing to relay at all. The session carries the event to
        # set: listening on each session anew cost every transaction more than
        # the statement that staged its rows.
        waiting = session.sync_session.info.setdefault(_RELAYS_TO_WAKE, set())
        waiting.add(self.wakeup)


_RELAYS_TO_WAKE = "arbor.outbox.relays_to_wake"


@sa.event.listens_for(Session, "after_commit")
def _wake_relays(session: Session) -> None:
    for wakeup in session.info.pop(_RELAYS_TO_WAKE, ()):
        wakeup.set()


@sa.event.listens_for(Session, "after_rollback")
def _forget_relays(session: Session) -> None:
    session.info.pop(_RELAYS_TO_WAKE, None)


_COPY_COLUMNS = ("event_id", "topic", "key", "value", "headers")


async def _copy_rows(
    session: AsyncSession, table: sa.Table, rows: list[tuple[str, str, str, bytes, str]]
) -> None:
    # COPY is several times faster than a multi-row INSERT for the thousands of rows
    # a batch or an import stages, and it runs inside the session's transaction.
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.copy_records_to_table(table.name, records=rows, columns=_COPY_COLUMNS)


def _headers_to_json(headers: Sequence[tuple[str, bytes]]) -> list[list[str]]:
    # Header values of a poison record may not be UTF-8; keep them readable and
    # lossless enough for review rather than refusing to dead-letter the record.
    return [[name, value.decode(errors="backslashreplace")] for name, value in headers]


def headers_from_json(headers: list[list[str]]) -> list[tuple[str, bytes]]:
    """Turn stored outbox headers back into Kafka headers."""
    return [(name, value.encode()) for name, value in headers]
