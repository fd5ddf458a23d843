"""Wiring: the one place where the metrics service is put together."""

from __future__ import annotations

from fastapi import FastAPI

from arbor_metrics.adapters.tables import messaging
from arbor_metrics.config import MetricsSettings
from arbor_metrics.entrypoints.http import router
from arbor_metrics.handlers import HANDLERS
from arbor_shared import topics
from arbor_shared.http import create_service_app
from arbor_shared.runtime import ServiceRuntime

SERVICE = "metrics"
MIGRATIONS = "arbor_metrics.adapters:migrations"


def create_app(settings: MetricsSettings | None = None) -> FastAPI:
    """Build the metrics application from settings (the environment by default)."""
    settings = settings or MetricsSettings()
    runtime = ServiceRuntime.create(SERVICE, settings, messaging)
    runtime.add_consumer("kpis", [topics.LEDGER], HANDLERS)
    return create_service_app(
        runtime,
        title="Arbor metrics",
        description="Collection KPIs per cohort, maintained as streams.",
        routers=[router],
    )
