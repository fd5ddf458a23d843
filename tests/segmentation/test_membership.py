"""Membership moves and the history that answers "which cohort, when, why"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from arbor_segmentation.domain.membership import (
    Interval,
    Membership,
    Move,
    decide,
    interval_at,
)
from arbor_segmentation.domain.rules import Decision

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_first_decision_is_a_move_from_nowhere_with_version_one() -> None:
    move = decide(
        None, Decision("late", "late", {"late_rate": 0.9}), definition_version=1, at=T0
    )

    assert isinstance(move, Move)
    assert (move.from_cohort, move.membership.cohort, move.membership.version) == (
        None,
        "late",
        1,
    )


def test_same_cohort_by_another_rule_restamps_without_moving() -> None:
    current = Membership("late", 1, "late", 3, T0)

    result = decide(
        current,
        Decision("late", "late-v2", {}),
        definition_version=2,
        at=T0 + timedelta(days=1),
    )
    unchanged = decide(
        current, Decision("late", "late", {}), definition_version=1, at=T0
    )

    assert result == Membership("late", 2, "late-v2", 3, T0)
    assert unchanged is None


def test_move_never_starts_before_the_current_interval() -> None:
    current = Membership("late", 1, "late", 3, T0)

    move = decide(
        current,
        Decision("ok", "default", {}),
        definition_version=1,
        at=T0 - timedelta(hours=1),
    )

    assert isinstance(move, Move)
    assert (move.membership.since, move.membership.version) == (T0, 4)


def _interval(version: int, cohort: str, start: int, end: int | None) -> Interval:
    return Interval(
        version=version,
        from_cohort=None,
        to_cohort=cohort,
        definition_version=1,
        rule=cohort,
        features={},
        valid_from=T0 + timedelta(days=start),
        valid_to=T0 + timedelta(days=end) if end is not None else None,
    )


def test_as_of_finds_the_interval_holding_each_moment_across_moves() -> None:
    history = [
        _interval(1, "new", 0, 10),
        _interval(2, "late", 10, 20),
        _interval(3, "ok", 20, None),
    ]

    def cohort_on(day: float) -> str | None:
        found = interval_at(history, T0 + timedelta(days=day))
        return found.to_cohort if found else None

    assert [cohort_on(d) for d in (-1, 0, 9.99, 10, 19, 20, 400)] == [
        None,
        "new",
        "new",
        "late",
        "late",
        "ok",
        "ok",
    ]
