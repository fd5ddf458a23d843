"""Every request gets one server span, named by its route and parented on the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

from arbor_shared.http import ServerSpans
from tests.portal.conftest import Portal

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@dataclass
class Traced:
    client: httpx.AsyncClient
    exporter: InMemorySpanExporter

    def only_span(self) -> ReadableSpan:
        spans = self.exporter.get_finished_spans()
        assert len(spans) == 1, spans
        return spans[0]


@pytest.fixture
async def traced() -> AsyncIterator[Traced]:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("boom")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app.add_middleware(ServerSpans, tracer_provider=provider)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield Traced(client, exporter)


async def test_span_is_named_by_route_template_with_status(traced: Traced) -> None:
    await traced.client.get("/items/42")
    span = traced.only_span()
    attributes = dict(span.attributes or {})
    assert (span.name, span.kind) == ("GET /items/{item_id}", SpanKind.SERVER)
    assert attributes["http.route"] == "/items/{item_id}"
    assert attributes["url.path"] == "/items/42"
    assert attributes["http.response.status_code"] == 200


async def test_span_continues_the_callers_trace(traced: Traced) -> None:
    traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
    await traced.client.get("/items/1", headers={"traceparent": traceparent})
    span = traced.only_span()
    assert span.parent is not None
    assert (span.context.trace_id, span.parent.span_id) == (
        int(TRACE_ID, 16),
        int(PARENT_ID, 16),
    )


async def test_unhandled_error_marks_span_failed(traced: Traced) -> None:
    response = await traced.client.get("/broken")
    span = traced.only_span()
    assert response.status_code == 500
    assert span.status.status_code is StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]


async def test_probes_are_not_traced(traced: Traced) -> None:
    await traced.client.get("/healthz")
    assert traced.exporter.get_finished_spans() == ()


async def test_portal_requests_pass_through_server_spans(portal: Portal) -> None:
    classes: list[object] = [m.cls for m in portal.app.user_middleware]
    assert ServerSpans in classes
