"""Wiring: the one place where ingest's parts are put together."""

from __future__ import annotations

from fastapi import FastAPI

from arbor_ingest.adapters.tables import messaging
from arbor_ingest.config import IngestSettings
from arbor_ingest.entrypoints.http import router
from arbor_shared.http import create_service_app
from arbor_shared.runtime import ServiceRuntime

SERVICE = "ingest"
MIGRATIONS = "arbor_ingest.adapters:migrations"


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    """Build the ingest application from settings (the environment by default)."""
    settings = settings or IngestSettings()
    runtime = ServiceRuntime.create(SERVICE, settings, messaging)
    return create_service_app(
        runtime,
        title="Arbor ingest",
        description="The one door for billing data: canonical events, provider "
        "webhooks and ledger exports, validated, stored durably and published.",
        routers=[router],
    )
