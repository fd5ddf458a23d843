"""Dunning's business metrics, on the service's registry."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter


@dataclass(frozen=True)
class DunningMetrics:
    actions: Counter
    recovered: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> DunningMetrics:
        return cls(
            actions=Counter(
                "arbor_dunning_actions_total",
                "Dunning actions by step, channel, outcome and experiment variant; "
                "outcome cancelled counts steps a payment, credit, write-off or void "
                "stopped before sending, paused those a dispute or promise held",
                ["step", "channel", "outcome", "variant"],
                registry=registry,
            ),
            recovered=Counter(
                "arbor_dunning_recovered_minor_total",
                "Minor units settled by payment after at least one contact",
                ["currency"],
                registry=registry,
            ),
        )

    def action(
        self, step: str, channel: str, outcome: str, variant: str | None
    ) -> None:
        self.actions.labels(step, channel, outcome, variant or "none").inc()
