"""A consumed event's span continues the producer's trace, recorded or not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import NoOpTracer, SpanKind, StatusCode

from arbor_shared import telemetry
from arbor_shared.clock import FixedClock
from arbor_shared.db.messaging import messaging_tables
from arbor_shared.events import ClockAdvanced
from arbor_shared.kafka.outbox import Outbox
from arbor_shared.telemetry import consumer_span, current_traceparent
from arbor_shared.topics import TopicNames

PRODUCER_TRACE = "0af7651916cd43dd8448eb211c80319c"
PRODUCER_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{PRODUCER_TRACE}-{PRODUCER_SPAN}-01"


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """Consumer spans recorded by a provider of the test's own."""
    # The process-wide provider can be set only once.
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(telemetry, "_consumer_tracer", provider.get_tracer("tests"))
    return exporter


def test_recorded_span_is_the_producers_child_and_the_parent_of_what_it_publishes(
    exporter: InMemorySpanExporter,
) -> None:
    with consumer_span("process InvoiceIssued", TRACEPARENT, {"a": 1}) as span:
        published = current_traceparent()
    (finished,) = exporter.get_finished_spans()
    context = finished.get_span_context()
    assert context is not None
    assert span.is_recording() is False  # ended on leaving
    assert finished.kind is SpanKind.CONSUMER
    assert finished.parent is not None
    assert format(finished.parent.span_id, "016x") == PRODUCER_SPAN
    assert format(context.trace_id, "032x") == PRODUCER_TRACE
    assert dict(finished.attributes or {}) == {"a": 1}
    assert published == f"00-{PRODUCER_TRACE}-{context.span_id:016x}-01"
    assert current_traceparent() is None


def test_recorded_span_keeps_the_error_raised_inside_it(
    exporter: InMemorySpanExporter,
) -> None:
    with (
        pytest.raises(ValueError, match="bad"),
        consumer_span("process InvoiceIssued", None, {}),
    ):
        raise ValueError("bad")
    (finished,) = exporter.get_finished_spans()
    assert finished.status.status_code is StatusCode.ERROR
    assert [event.name for event in finished.events] == ["exception"]


def test_span_nobody_records_still_passes_the_producers_trace_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(telemetry, "_consumer_tracer", NoOpTracer())
    with consumer_span("process InvoiceIssued", TRACEPARENT, {}) as span:
        published = current_traceparent()
        current = trace.get_current_span()
    assert span.is_recording() is False
    assert current is span
    assert published == TRACEPARENT
    assert current_traceparent() is None


def test_span_without_a_producer_trace_passes_none_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(telemetry, "_consumer_tracer", NoOpTracer())
    with consumer_span("process InvoiceIssued", None, {}):
        assert current_traceparent() is None


def _outbox() -> Outbox:
    return Outbox(
        messaging_tables(sa.MetaData()).outbox,
        topics=TopicNames("t"),
        source="arbor/tests",
        clock=FixedClock(datetime(2025, 3, 1, tzinfo=UTC)),
    )


def test_envelope_captures_the_active_trace_unless_told_which_or_none(
    exporter: InMemorySpanExporter,
) -> None:
    data = ClockAdvanced(now=datetime(2025, 3, 1, tzinfo=UTC))
    with consumer_span("process ClockAdvanced", TRACEPARENT, {}):
        active = current_traceparent()
        captured = _outbox().envelope(data)
        given = _outbox().envelope(data, trace_parent=TRACEPARENT)
        untraced = _outbox().envelope(data, trace_parent=None)
    assert active is not None
    assert captured.trace_parent == active
    assert given.trace_parent == TRACEPARENT
    # A caller that captured no trace (an event consumed without one) says so;
    # the batch's own span must not be put in its place.
    assert untraced.trace_parent is None
