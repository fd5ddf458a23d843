"""Prometheus metrics every service exposes about its event pipeline.

Each service gets its own prefix (``arbor_ingest_...``) and its own registry, so two
services can live in one test process. Labels are bounded: topic, event type, outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
TRANSIENT_STAGES = ("consume", "relay")


@dataclass(frozen=True)
class PipelineMetrics:
    registry: CollectorRegistry
    consumed: Counter
    produced: Counter
    dead_lettered: Counter
    handler_seconds: Histogram
    batch_seconds: Histogram
    consumer_lag: Gauge
    outbox_backlog: Gauge
    last_event_age: Gauge
    transient_failures: Counter

    @classmethod
    def create(cls, namespace: str) -> PipelineMetrics:
        """Register the pipeline metrics under ``namespace`` in a fresh registry."""
        registry = CollectorRegistry()
        metrics = cls(
            registry=registry,
            consumed=Counter(
                "events_consumed_total",
                "Events taken from Kafka, by type and outcome",
                ["topic", "event_type", "outcome"],
                namespace=namespace,
                registry=registry,
            ),
            produced=Counter(
                "events_produced_total",
                "Events the outbox relay published and the broker acknowledged",
                ["topic"],
                namespace=namespace,
                registry=registry,
            ),
            dead_lettered=Counter(
                "events_dead_lettered_total",
                "Records sent to a dead-letter topic, by reason",
                ["topic", "reason"],
                namespace=namespace,
                registry=registry,
            ),
            handler_seconds=Histogram(
                "handler_duration_seconds",
                "Time to apply one event inside its batch transaction",
                ["event_type"],
                namespace=namespace,
                registry=registry,
                buckets=_LATENCY_BUCKETS,
            ),
            batch_seconds=Histogram(
                "batch_duration_seconds",
                "Time to process and commit one consumed batch",
                namespace=namespace,
                registry=registry,
                buckets=_LATENCY_BUCKETS,
            ),
            consumer_lag=Gauge(
                "consumer_lag_records",
                "Records between the committed offset and the end of the partition",
                ["topic", "partition"],
                namespace=namespace,
                registry=registry,
            ),
            outbox_backlog=Gauge(
                "outbox_backlog_events",
                "Events committed to the outbox and not yet acknowledged by Kafka",
                namespace=namespace,
                registry=registry,
            ),
            last_event_age=Gauge(
                "last_event_age_seconds",
                "Seconds since the newest applied event was produced (freshness)",
                namespace=namespace,
                registry=registry,
            ),
            transient_failures=Counter(
                "transient_failures_total",
                "Batches retried after a transient database or broker failure",
                ["stage"],
                namespace=namespace,
                registry=registry,
            ),
        )
        # A counter with labels has no series until its first increment; rates and
        # alerts over failures that have not happened yet need an explicit zero.
        for stage in TRANSIENT_STAGES:
            metrics.transient_failures.labels(stage=stage)
        return metrics
