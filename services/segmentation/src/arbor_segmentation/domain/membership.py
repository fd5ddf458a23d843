"""Membership: which cohort a customer is in, since when, and when it moves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from arbor_segmentation.domain.features import FeatureValue
from arbor_segmentation.domain.rules import Decision


@dataclass(frozen=True)
class Membership:
    cohort: str
    definition_version: int
    rule: str
    version: int
    since: datetime


@dataclass(frozen=True)
class Move:
    """A change of cohort: the next membership and the reason for it."""

    from_cohort: str | None
    membership: Membership
    features: dict[str, FeatureValue]


def decide(
    current: Membership | None,
    decision: Decision,
    *,
    definition_version: int,
    at: datetime,
) -> Move | Membership | None:
    """A move if the cohort changes, a restamped membership if only the reason does."""
    if current is not None and current.cohort == decision.cohort:
        if (current.definition_version, current.rule) == (
            definition_version,
            decision.rule,
        ):
            return None
        return Membership(
            current.cohort,
            definition_version,
            decision.rule,
            current.version,
            current.since,
        )
    # Membership intervals never run backwards, even if the clock that decided this
    # move is behind the one that decided the last.
    since = max(at, current.since) if current else at
    version = current.version + 1 if current else 1
    return Move(
        from_cohort=current.cohort if current else None,
        membership=Membership(
            decision.cohort, definition_version, decision.rule, version, since
        ),
        features=decision.features,
    )


@dataclass(frozen=True)
class Interval:
    """One stretch of membership history and why it began."""

    version: int
    from_cohort: str | None
    to_cohort: str
    definition_version: int
    rule: str
    features: dict[str, FeatureValue]
    valid_from: datetime
    valid_to: datetime | None


def interval_at(history: list[Interval], as_of: datetime) -> Interval | None:
    """The interval holding ``as_of``: valid from it, inclusive, to it, exclusive."""
    for interval in reversed(history):
        if interval.valid_from <= as_of and (
            interval.valid_to is None or as_of < interval.valid_to
        ):
            return interval
    return None
