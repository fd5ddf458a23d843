"""OpenTelemetry tracing: one provider per process, context carried through Kafka.

The outbox breaks the call stack between the request that decides to publish and the
relay that sends, so the trace context is captured into the outbox row when the event is
written and restored from the record's ``ce_traceparent`` header when it is consumed.
Each consumer span is therefore a child of the span that produced the event.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import (
    TraceContextTextMapPropagator,
)

_propagator = TraceContextTextMapPropagator()
_TRACEPARENT = "traceparent"
# Looked up once: get_tracer costs a dozen microseconds, and every consumed event
# opens a span. Taken before the provider is installed, it is a proxy that uses
# the provider as soon as there is one.
_consumer_tracer = trace.get_tracer("arbor.kafka")


def configure_tracing(service: str, otlp_endpoint: str | None) -> TracerProvider:
    """Install the global tracer provider, exporting over OTLP/HTTP when configured."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if otlp_endpoint:
        exporter = OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces")
        provider.add_span_processor(
            BatchSpanProcessor(exporter, schedule_delay_millis=200)
        )
    trace.set_tracer_provider(provider)
    return provider


def current_traceparent() -> str | None:
    """The W3C traceparent of the active span, if one is recording."""
    # What the propagator's inject writes, without its carrier and setter: every
    # staged event asks for it, thousands a batch.
    span = trace.get_current_span().get_span_context()
    if not span.is_valid:
        return None
    return f"00-{span.trace_id:032x}-{span.span_id:016x}-{span.trace_flags:02x}"


@contextmanager
def consumer_span(
    name: str, traceparent: str | None, attributes: dict[str, str | int]
) -> Iterator[trace.Span]:
    """Open a CONSUMER span whose parent is the producer's span, if known."""
    parent = _propagator.extract({_TRACEPARENT: traceparent} if traceparent else {})
    span = _consumer_tracer.start_span(
        name, context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    )
    # A span that records nothing (no tracer provider, or not sampled) needs only
    # to be current, which carries the trace into the handler's log lines and the
    # events it publishes; ending it and watching for errors would be wasted work.
    token = context.attach(trace.set_span_in_context(span, parent))
    try:
        if not span.is_recording():
            yield span
            return
        with trace.use_span(span, end_on_exit=True):
            yield span
    finally:
        context.detach(token)
