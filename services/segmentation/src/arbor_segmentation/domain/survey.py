"""What a definition would do to the customers: moves, overlaps and gaps."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from arbor_segmentation.domain.features import Features
from arbor_segmentation.domain.rules import Definition


@dataclass
class Flow:
    from_cohort: str | None
    to_cohort: str
    count: int = 0
    samples: list[str] = field(default_factory=list)


@dataclass
class Overlap:
    rules: tuple[str, ...]
    winner: str
    count: int = 0
    samples: list[str] = field(default_factory=list)


@dataclass
class Survey:
    customers: int = 0
    flows: dict[tuple[str | None, str], Flow] = field(default_factory=dict)
    overlaps: dict[tuple[str, ...], Overlap] = field(default_factory=dict)
    default_only: int = 0
    default_samples: list[str] = field(default_factory=list)

    @property
    def moving(self) -> int:
        return sum(f.count for f in self.flows.values() if f.from_cohort != f.to_cohort)


def survey(
    definition: Definition,
    customers: Iterable[tuple[str, Features, str | None]],
    *,
    sample_size: int,
    into: Survey | None = None,
) -> Survey:
    """Evaluate ``definition`` for ``(customer, features, current cohort)`` rows."""
    result = into or Survey()
    for customer_id, values, current in customers:
        result.customers += 1
        matched = definition.matches(values)
        cohort = matched[0].cohort if matched else definition.default_cohort
        flow = result.flows.setdefault((current, cohort), Flow(current, cohort))
        _add(flow, customer_id, sample_size)
        if len(matched) > 1:
            names = tuple(rule.name for rule in matched)
            overlap = result.overlaps.setdefault(names, Overlap(names, names[0]))
            _add(overlap, customer_id, sample_size)
        if not matched:
            result.default_only += 1
            if len(result.default_samples) < sample_size:
                result.default_samples.append(customer_id)
    return result


def _add(bucket: Flow | Overlap, customer_id: str, sample_size: int) -> None:
    bucket.count += 1
    if len(bucket.samples) < sample_size:
        bucket.samples.append(customer_id)
