"""Each request is one server span in its caller's trace, named after its route."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind

from arbor_ingest.adapters.tables import messaging
from arbor_shared.http import create_service_app
from arbor_shared.runtime import ServiceRuntime
from tests.conftest import Namespace
from tests.ingest.conftest import ingest_settings

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"

router = APIRouter(prefix="/v1")


@router.get("/things/{thing_id}")
async def get_thing(thing_id: str) -> dict[str, str]:
    """One thing."""
    return {"id": thing_id}


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def http(
    namespace: Namespace, exporter: InMemorySpanExporter
) -> AsyncIterator[httpx.AsyncClient]:
    """A service app whose spans the test reads; nothing in it connects."""
    # A provider of the test's own: the process-wide one can be set only once.
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    runtime = ServiceRuntime.create("ingest", ingest_settings(namespace), messaging)
    app = create_service_app(
        runtime,
        title="spans",
        description="test",
        routers=[router],
        tracer_provider=provider,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
        yield http
    await runtime.engine.dispose()


def _server_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]


async def test_request_is_one_server_span_named_after_its_route_in_callers_trace(
    http: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    response = await http.get("/v1/things/t-1", headers={"traceparent": TRACEPARENT})

    assert response.status_code == 200
    (span,) = exporter.get_finished_spans()
    assert span.kind is SpanKind.SERVER
    assert span.name == "GET /v1/things/{thing_id}"
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/v1/things/{thing_id}"
    assert span.attributes["http.response.status_code"] == 200
    assert format(span.context.trace_id, "032x") == CALLER_TRACE
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == CALLER_SPAN


async def test_probes_and_metrics_are_not_traced(
    http: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    for path in ("/healthz", "/metrics"):
        assert (await http.get(path)).status_code == 200

    assert exporter.get_finished_spans() == ()


async def test_unknown_path_is_a_server_span_too(
    http: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    response = await http.get("/v1/nothing-here")

    assert response.status_code == 404
    assert [s.name for s in _server_spans(exporter)] == ["GET"]
