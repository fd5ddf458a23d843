"""What accepting events stages in the outbox: one row per event and per fact.

The batch path encodes each event's value once (for its digest and its record) and
captures the trace once per event; the rows must be those the one-event-at-a-time
path of the outbox would write.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from opentelemetry import context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_ingest import handlers
from arbor_ingest.entrypoints.parsing import parse_event
from arbor_shared.events import Envelope, InvoiceIssued, model_for
from arbor_shared.events.envelope import new_event_id
from arbor_shared.kafka.outbox import headers_from_json
from tests.ingest.test_api import invoice, payment

TRACE = "00-0000000000000000000000000000002a-000000000000002a-01"


@contextmanager
def in_trace(n: int) -> Iterator[None]:
    """Run as a request of trace ``n`` would."""
    span = NonRecordingSpan(
        SpanContext(
            trace_id=n,
            span_id=n,
            is_remote=False,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
    )
    token = context.attach(trace.set_span_in_context(span))
    try:
        yield
    finally:
        context.detach(token)


async def staged_rows(session: AsyncSession, table: sa.Table) -> list[Any]:
    # Read inside the staging transaction, which is then rolled back: committed,
    # the rows would be the relay's to send and delete at any moment.
    result = await session.execute(
        sa.select(
            table.c.event_id,
            table.c.topic,
            table.c.key,
            table.c.value,
            table.c.headers,
        ).order_by(table.c.seq)
    )
    return list(result)


async def test_each_event_and_its_facts_are_staged_canonically_in_its_trace(
    app: FastAPI,
) -> None:
    submitted = [
        parse_event(invoice("inv-1", amount=10_000)),
        parse_event(payment("pay-1", 10_000, [("inv-1", 10_000)])),
    ]
    runtime = app.state.runtime
    with in_trace(42):
        async with runtime.sessions() as session:
            results = await handlers.accept_many(
                session, runtime.outbox, submitted, publisher="t"
            )
            rows = await staged_rows(session, runtime.tables.outbox)
    assert [r.status for r in results] == ["accepted", "accepted"]

    envelopes = [Envelope.from_headers(headers_from_json(r.headers)) for r in rows]
    # The stored headers are exactly what the envelope renders, in its order.
    assert [r.headers for r in rows] == [
        [[name, value.decode()] for name, value in e.to_headers()] for e in envelopes
    ]
    assert {e.trace_parent for e in envelopes} == {TRACE}
    assert [e.id for e in envelopes if e.causation_id is None] == [
        "ev-inv-1",
        "ev-pay-1",
    ]
    for row, envelope in zip(rows, envelopes, strict=True):
        data = model_for(envelope.type).model_validate_json(row.value)
        assert row.value == data.model_dump_json().encode()
        assert row.topic == runtime.topics(data.topic)
        assert row.key == data.customer_id == envelope.subject
    for (_event_id, data), envelope in zip(
        submitted, [e for e in envelopes if e.causation_id is None], strict=True
    ):
        row = rows[envelopes.index(envelope)]
        assert row.value == data.model_dump_json().encode()
    facts = [e for e in envelopes if e.causation_id is not None]
    assert {e.type for e in facts} >= {"InvoiceBalanceChanged", "InvoiceSettled"}
    assert all(uuid.UUID(e.id).version == 4 for e in facts)


async def test_encoded_and_plain_publishing_stage_the_same_row(app: FastAPI) -> None:
    runtime = app.state.runtime
    outbox = runtime.outbox
    _event_id, data = parse_event(invoice("inv-9"))
    assert isinstance(data, InvoiceIssued)
    with in_trace(42):
        plain = outbox.envelope(data, event_id="ev-plain")
        encoded = outbox.envelope(data, event_id="ev-encoded", time=plain.time)
    async with runtime.sessions() as session:
        await outbox.publish_many(session, [(plain, data)])
        await outbox.publish_encoded(
            session, [(encoded, data, data.model_dump_json().encode())]
        )
        first, second = await staged_rows(session, runtime.tables.outbox)

    assert (first.topic, first.key, first.value) == (
        second.topic,
        second.key,
        second.value,
    )
    assert [h for h in first.headers if h[0] != "ce_id"] == [
        h for h in second.headers if h[0] != "ce_id"
    ]
    assert dict(first.headers)["ce_traceparent"] == TRACE


def test_header_pairs_are_the_kafka_headers_before_encoding() -> None:
    envelope = Envelope(
        id="ev-1",
        type="InvoiceIssued",
        source="arbor/tests",
        time=datetime(2024, 3, 1, 9, tzinfo=UTC),
        subject="cus-1",
        trace_parent=TRACE,
        causation_id="ev-0",
        # An extension named like an attribute replaces it where it stands.
        extra={"source": "elsewhere", "partner": "acme"},
    )

    pairs = envelope.header_pairs()

    assert envelope.to_headers() == [(n, v.encode()) for n, v in pairs]
    assert pairs == [
        ("ce_specversion", "1.0"),
        ("ce_id", "ev-1"),
        ("ce_type", "InvoiceIssued"),
        ("ce_source", "elsewhere"),
        ("ce_time", "2024-03-01T09:00:00+00:00"),
        ("ce_subject", "cus-1"),
        ("ce_schemaversion", "1"),
        ("content-type", "application/json"),
        ("ce_traceparent", TRACE),
        ("ce_causationid", "ev-0"),
        ("ce_partner", "acme"),
    ]


def test_new_event_ids_are_distinct_version_4_uuids() -> None:
    ids = [new_event_id() for _ in range(2_000)]

    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
