"""Wiring: the one place where the segmentation service is put together."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from arbor_segmentation.adapters.definitions import DefinitionCache
from arbor_segmentation.adapters.moves import MoveCounter
from arbor_segmentation.adapters.tables import messaging
from arbor_segmentation.config import SegmentationSettings
from arbor_segmentation.domain.errors import SegmentationError
from arbor_segmentation.domain.prediction import LatePaymentModel
from arbor_segmentation.entrypoints.http import domain_error, router
from arbor_segmentation.entrypoints.workers import Workers
from arbor_segmentation.handlers import Segmenter
from arbor_shared import heap, topics
from arbor_shared.http import Hook, create_service_app
from arbor_shared.runtime import ServiceRuntime

SERVICE = "segmentation"
MIGRATIONS = "arbor_segmentation.adapters:migrations"

INPUT_TOPICS = [
    topics.CUSTOMERS,
    topics.INVOICES,
    topics.PAYMENTS,
    topics.LEDGER,
    topics.CASES,
]


def create_app(
    settings: SegmentationSettings | None = None, *, on_start: Sequence[Hook] = ()
) -> FastAPI:
    """Build the segmentation application from settings (the environment by default)."""
    settings = settings or SegmentationSettings()
    runtime = ServiceRuntime.create(SERVICE, settings, messaging)
    model = LatePaymentModel()
    cache = DefinitionCache()
    moves = MoveCounter.create(runtime.metrics.registry)

    def segmenter() -> Segmenter:
        # One per path so each counts only the moves its own transactions commit.
        return Segmenter(model, cache, MoveCounter(moves.counter))

    consuming = segmenter()
    loop = runtime.add_consumer("features", INPUT_TOPICS, consuming.handlers())
    loop.on_batch_committed = consuming.after_commit
    workers = Workers(settings, timers=segmenter(), rescores=segmenter())
    app = create_service_app(
        runtime,
        title="Arbor segmentation",
        description="Behaviour features, versioned cohort definitions, membership "
        "history and late-payment risk.",
        routers=[router],
        on_start=[workers.start, *on_start],
        on_stop=[workers.stop],
    )
    app.add_exception_handler(SegmentationError, domain_error)
    return app


def create_server_app(settings: SegmentationSettings) -> FastAPI:
    """The application as ``serve`` runs it: alone in its process."""
    # Unfrozen, full collections of the startup heap took a third of the CPU per
    # consumed event; a batch allocates hundreds of thousands of objects (states,
    # features, events), so young collections run every 10,000, not 700.
    freeze = heap.frozen_after_start(young_collection_every=10_000)
    return create_app(settings, on_start=[freeze])
