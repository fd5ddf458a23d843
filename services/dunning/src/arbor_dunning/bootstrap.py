"""Wiring: the one place where the dunning service is put together."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import FastAPI

from arbor_dunning.adapters.metrics import DunningMetrics
from arbor_dunning.adapters.senders import ChannelSenders, SmtpSender, WebhookSender
from arbor_dunning.adapters.tables import messaging
from arbor_dunning.config import DunningSettings
from arbor_dunning.decisions import Decider
from arbor_dunning.delivery import Delivery
from arbor_dunning.entrypoints.http import router
from arbor_dunning.handlers import build_handlers
from arbor_dunning.policies import seed_defaults
from arbor_dunning.scheduler import Scheduler
from arbor_shared import topics
from arbor_shared.http import create_service_app
from arbor_shared.runtime import ServiceRuntime, cancel

SERVICE = "dunning"
MIGRATIONS = "arbor_dunning.adapters:migrations"

CONSUMED = [
    topics.CUSTOMERS,
    topics.INVOICES,
    topics.LEDGER,
    topics.CASES,
    topics.COHORTS,
]


def create_app(
    settings: DunningSettings | None = None, senders: ChannelSenders | None = None
) -> FastAPI:
    """Build the dunning application from settings (the environment by default)."""
    settings = settings or DunningSettings()
    runtime = ServiceRuntime.create(SERVICE, settings, messaging)
    metrics = DunningMetrics.create(runtime.metrics.registry)
    runtime.add_consumer("facts", CONSUMED, build_handlers(metrics))
    scheduler = build_scheduler(runtime, settings, metrics, senders)
    tasks: list[asyncio.Task[None]] = []

    async def start_scheduler(runtime: ServiceRuntime) -> None:
        async with runtime.sessions.begin() as session:
            await seed_defaults(session, list(settings.seed_cohorts))
        if settings.scheduler_enabled:
            tasks.append(asyncio.create_task(scheduler.run(), name="scheduler"))

    async def stop_scheduler(runtime: ServiceRuntime) -> None:
        scheduler.stop()
        for task in tasks:
            await asyncio.wait_for(asyncio.shield(task), 30)
            await cancel(task)

    app = create_service_app(
        runtime,
        title="Arbor dunning",
        description="Per-cohort collection policies, scheduled and sent exactly once.",
        routers=[router],
        on_start=[start_scheduler],
        on_stop=[stop_scheduler],
    )
    app.state.scheduler = scheduler
    app.state.dunning_metrics = metrics
    return app


def build_scheduler(
    runtime: ServiceRuntime,
    settings: DunningSettings,
    metrics: DunningMetrics,
    senders: ChannelSenders | None = None,
) -> Scheduler:
    """The scheduler with its decider and delivery, sharing the runtime's parts."""
    senders = senders or ChannelSenders(SmtpSender(settings), WebhookSender(settings))
    delivery = Delivery(
        sessions=runtime.sessions,
        outbox=runtime.outbox,
        clock=runtime.clock,
        metrics=metrics,
        senders=senders,
        max_attempts=settings.max_delivery_attempts,
    )
    return Scheduler(
        sessions=runtime.sessions,
        outbox=runtime.outbox,
        clock=runtime.clock,
        decider=Decider(runtime.outbox, metrics),
        delivery=delivery,
        batch_size=settings.scheduler_batch_size,
        interval_seconds=settings.scheduler_interval_seconds,
        lease=timedelta(seconds=settings.recovery_lease_seconds),
    )
