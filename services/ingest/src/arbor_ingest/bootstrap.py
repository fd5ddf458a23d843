"""Wiring: the one place where ingest's parts are put together."""

from __future__ import annotations

import importlib
import importlib.util
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, FastAPI

from arbor_ingest.adapters.tables import messaging
from arbor_ingest.config import IngestSettings
from arbor_ingest.domain.publishers import TokenBucket
from arbor_ingest.entrypoints import http
from arbor_ingest.entrypoints.auth import Gatekeeper
from arbor_ingest.entrypoints.errors import install_error_handlers
from arbor_ingest.entrypoints.group_commit import SingleEventCommitter
from arbor_ingest.entrypoints.retention import KeyRetention
from arbor_ingest.entrypoints.schemas import BatchCreate, EventCreate
from arbor_shared import heap
from arbor_shared.clock import SystemClock
from arbor_shared.http import Hook, create_service_app
from arbor_shared.runtime import ServiceRuntime

SERVICE = "ingest"
MIGRATIONS = "arbor_ingest.adapters:migrations"

# Entrypoints that exist only once their module does (webhooks, imports); each
# module exposes ``router``.
_OPTIONAL_ENTRYPOINTS = (
    "arbor_ingest.entrypoints.webhooks",
    "arbor_ingest.entrypoints.imports",
)


def routers() -> list[APIRouter]:
    """Every router ingest serves: the canonical API and the optional sources."""
    found: list[APIRouter] = [http.router]
    for name in _OPTIONAL_ENTRYPOINTS:
        if importlib.util.find_spec(name) is not None:
            found.append(importlib.import_module(name).router)
    return found


def create_app(
    settings: IngestSettings | None = None, *, on_start: Sequence[Hook] = ()
) -> FastAPI:
    """Build the ingest application from settings (the environment by default)."""
    settings = settings or IngestSettings()
    runtime = ServiceRuntime.create(SERVICE, settings, messaging)
    single_events = SingleEventCommitter(runtime)
    retention = KeyRetention(
        timedelta(hours=settings.idempotency_retention_hours),
        every_seconds=settings.idempotency_purge_seconds,
        wall_clock=SystemClock(),
    )
    app = create_service_app(
        runtime,
        title="Arbor ingest",
        description="The one door for billing data: canonical events, provider "
        "webhooks and ledger exports, validated, stored durably and published. "
        "Write routes need a request signed by a known publisher: X-Arbor-Key-Id, "
        "X-Arbor-Timestamp (Unix seconds, within the tolerance) and "
        'X-Arbor-Signature "v1=" + hex HMAC-SHA256 of "{timestamp}.{raw body}".',
        routers=routers(),
        on_start=[single_events.start, retention.start, *on_start],
        on_stop=[single_events.stop, retention.stop],
        max_body_bytes=settings.max_body_bytes,
    )
    app.state.settings = settings
    app.state.single_events = single_events
    app.state.key_retention = retention
    app.state.max_batch_events = settings.max_batch_events
    app.state.gatekeeper = Gatekeeper(
        registry=settings.publisher_registry(),
        limiter=TokenBucket(
            rate=settings.rate_per_second,
            burst=settings.rate_burst,
            monotonic=time.monotonic,
        ),
        tolerance_seconds=settings.signature_tolerance_seconds,
        wall_clock=SystemClock(),
    )
    install_error_handlers(app)
    _document_bodies(app)
    return app


def create_server_app(settings: IngestSettings) -> FastAPI:
    """The application as ``serve`` runs it: alone in its process."""
    # A batch keeps hundreds of thousands of objects alive until it is answered. At
    # 10,000 allocations a young collection, every tenth pass also walked the middle
    # generation (about 20 us of CPU per event in all, against 12 at 50,000); above
    # that, each pass over a live batch grows into a pause of tens of milliseconds.
    freeze = heap.frozen_after_start(young_collection_every=50_000)
    return create_app(settings, on_start=[freeze])


def _document_bodies(app: FastAPI) -> None:
    # The routes read raw bodies (signatures cover the exact bytes), so FastAPI does
    # not see their models; publish them in the OpenAPI document by hand.
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        template = "#/components/schemas/{model}"
        for model in (EventCreate, BatchCreate):
            document = model.model_json_schema(ref_template=template)
            components.update(document.pop("$defs", {}))
            components[model.__name__] = document
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
