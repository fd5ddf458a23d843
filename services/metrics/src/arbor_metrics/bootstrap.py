"""Wiring: the one place where the metrics service is put together."""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from arbor_metrics.adapters.gauges import GaugeRefresher, KpiGauges
from arbor_metrics.adapters.repository import FactsCache
from arbor_metrics.adapters.tables import messaging
from arbor_metrics.config import MetricsSettings
from arbor_metrics.domain.errors import MetricsError
from arbor_metrics.entrypoints.http import router
from arbor_metrics.handlers import HANDLERS
from arbor_shared import topics
from arbor_shared.http import create_service_app
from arbor_shared.runtime import ServiceRuntime

SERVICE = "metrics"
MIGRATIONS = "arbor_metrics.adapters:migrations"
CONSUMER = "kpis"
SOURCE_TOPICS = [topics.LEDGER, topics.COHORTS, topics.DUNNING, topics.CASES]


def create_runtime(settings: MetricsSettings) -> ServiceRuntime:
    """The runtime with the KPI consumer on every source topic."""
    runtime = ServiceRuntime.create(SERVICE, settings, messaging)
    runtime.add_consumer(CONSUMER, SOURCE_TOPICS, HANDLERS)
    return runtime


def create_app(settings: MetricsSettings | None = None) -> FastAPI:
    """Build the metrics application from settings (the environment by default)."""
    settings = settings or MetricsSettings()
    runtime = create_runtime(settings)
    gauges = KpiGauges.register(runtime.metrics.registry)
    cache = FactsCache()
    refresher = GaugeRefresher(
        runtime,
        gauges,
        window=settings.gauge_window_days,
        grace=settings.grace_days,
        interval=settings.gauge_refresh_seconds,
    )
    app = create_service_app(
        runtime,
        title="Arbor metrics",
        description="Collection KPIs per cohort, maintained as streams.",
        routers=[router],
        on_start=[refresher.start],
        on_stop=[refresher.stop],
    )
    app.state.gauges = refresher
    app.state.facts_cache = cache
    app.add_exception_handler(MetricsError, _unprocessable)
    return app


async def _unprocessable(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": str(exc)}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
    )
