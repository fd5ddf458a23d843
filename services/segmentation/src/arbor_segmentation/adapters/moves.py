"""The count of cohort moves, taken only once their transaction has committed."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter


@dataclass
class MoveCounter:
    """Counts moves once their transaction commits, so retries never double count."""

    counter: Counter
    _pending: dict[tuple[str, int], tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def create(cls, registry: CollectorRegistry) -> MoveCounter:
        return cls(
            Counter(
                "cohort_moves_total",
                "Customers that moved from one cohort to another",
                ["from_cohort", "to_cohort"],
                namespace="arbor_segmentation",
                registry=registry,
            )
        )

    def stage(self, customer_id: str, version: int, from_: str, to: str) -> None:
        self._pending[(customer_id, version)] = (from_, to)

    async def flush(self) -> None:
        # A batch moves hundreds of customers between a handful of cohort pairs, and
        # resolving a labelled child costs more than the increment.
        by_pair = collections.Counter(self._pending.values())
        for (from_cohort, to_cohort), moved in by_pair.items():
            self.counter.labels(from_cohort=from_cohort, to_cohort=to_cohort).inc(moved)
        self._pending.clear()

    def discard(self) -> None:
        self._pending.clear()
