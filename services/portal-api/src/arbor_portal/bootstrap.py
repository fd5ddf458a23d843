"""Wiring: the one place where the portal is put together."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from arbor_portal.adapters.readmodel import reading
from arbor_portal.adapters.readpool import LinkHints, ReadPool
from arbor_portal.adapters.tables import messaging
from arbor_portal.config import PortalSettings
from arbor_portal.domain.ratelimit import RateLimiter
from arbor_portal.entrypoints import (
    account,
    actions,
    errors,
    openapi,
    ops,
    threads,
)
from arbor_portal.handlers import HANDLERS
from arbor_shared import heap, topics
from arbor_shared.http import Hook, create_service_app
from arbor_shared.runtime import ServiceRuntime

SERVICE = "portal-api"
MIGRATIONS = "arbor_portal.adapters:migrations"

READ_MODEL_TOPICS = [
    topics.CUSTOMERS,
    topics.INVOICES,
    topics.PAYMENTS,
    topics.LEDGER,
    topics.CASES,
    topics.DUNNING,
]


def create_app(
    settings: PortalSettings | None = None, *, on_start: Sequence[Hook] = ()
) -> FastAPI:
    """Build the portal application from settings (the environment by default)."""
    settings = settings or PortalSettings()
    runtime = ServiceRuntime.create(SERVICE, settings, messaging)
    runtime.add_consumer("read-model", READ_MODEL_TOPICS, HANDLERS)
    read_pool = ReadPool(
        runtime.engine,
        schema=settings.database_schema,
        size=settings.database_pool_size,
    )
    app = create_service_app(
        runtime,
        title="Arbor customer portal",
        description="Customers see their invoices, payments and balance, keep their "
        "billing details, write to finance, dispute, promise to pay and ask for "
        "payment plans. Every route is scoped to the customer of the bearer token.",
        routers=[account.router, actions.router, threads.router, ops.router],
        max_body_bytes=settings.max_body_bytes,
        on_start=[lambda _runtime: read_pool.open(), *on_start],
        on_stop=[lambda _runtime: read_pool.close()],
    )
    app.state.read_pool = read_pool
    app.state.link_hints = LinkHints()
    app.state.read_engine = reading(runtime.engine)
    app.state.rate_limiter = RateLimiter(
        rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst
    )
    app.state.max_page_size = settings.max_page_size
    app.state.promise_horizon_days = settings.promise_horizon_days
    errors.install(app)
    openapi.install(app)
    return app


def create_server_app(settings: PortalSettings) -> FastAPI:
    """The application as ``serve`` runs it: alone in its process."""
    return create_app(settings, on_start=[heap.frozen_after_start()])
