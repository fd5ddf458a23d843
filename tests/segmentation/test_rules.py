"""Cohort definitions: validation, priority, overlaps and gaps, the reason kept."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from arbor_segmentation.domain import defaults, rules
from arbor_segmentation.domain.errors import DefinitionInvalidError
from arbor_segmentation.domain.features import (
    CustomerState,
    Features,
    FeatureValue,
    features,
)
from arbor_segmentation.domain.survey import survey

NOW = datetime(2024, 6, 1, tzinfo=UTC)


def _features(**changes: FeatureValue) -> Features:
    return features(CustomerState("cus-1"), NOW) | changes


def _problems(*raw: tuple[str, int, str]) -> dict[str, list[str]]:
    with pytest.raises(DefinitionInvalidError) as caught:
        rules.build(2, [(n, p, e, None) for n, p, e in raw], "standard")
    found: dict[str, list[str]] = {}
    for problem in caught.value.problems:
        found.setdefault(problem.rule, []).append(problem.reason)
    return found


def test_seeded_definition_is_valid() -> None:
    definition = rules.build(1, defaults.SEED_RULES, defaults.DEFAULT_COHORT)

    assert [r.name for r in definition.rules][:2] == ["disputers", "chronic-late"]


def test_unknown_feature_and_parse_error_name_the_rule() -> None:
    found = _problems(("a", 1, "tenure_dayz > 3"), ("b", 2, "tenure_days >"))

    assert found["a"] == ["unknown feature tenure_dayz"]
    assert found["b"][0].startswith("the expression does not parse")


def test_type_error_is_found_even_behind_a_short_circuit() -> None:
    found = _problems(("a", 1, "false && region > 3"), ("b", 2, "tenure_days + 1"))

    assert found["a"][0].startswith("type error")
    assert found["b"] == ["the expression must be a bool, it gives IntType"]


def test_rules_after_an_always_true_rule_or_repeating_one_are_unreachable() -> None:
    found = _problems(
        ("late", 1, "late_rate > 0.5"),
        ("again", 2, "late_rate  >  0.5"),
        ("all", 3, "1 == 1"),
        ("after", 4, "tenure_days > 1"),
    )

    assert found == {
        "again": ["unreachable: late has the same rule"],
        "after": ["unreachable: all before it always holds"],
    }


def test_duplicate_priority_and_name_are_rejected() -> None:
    found = _problems(("a", 1, "tenure_days > 1"), ("a", 1, "tenure_days > 2"))

    assert "priority 1 is also a's" in found["a"]
    assert "the rule name is used twice or reserved" in found["a"]


def test_lowest_priority_rule_that_holds_wins_and_keeps_its_features() -> None:
    definition = rules.build(
        3,
        [
            ("broad", 20, "overdue_invoices > 0", None),
            ("narrow", 10, "overdue_invoices > 2 && disputes_open > 0", "disputers"),
        ],
        "standard",
    )

    decided = definition.evaluate(_features(overdue_invoices=3, disputes_open=1))
    fallback = definition.evaluate(_features())

    assert (decided.cohort, decided.rule) == ("disputers", "narrow")
    assert decided.features == {"disputes_open": 1, "overdue_invoices": 3}
    assert (fallback.cohort, fallback.rule, fallback.features) == (
        "standard",
        "default",
        {},
    )


def test_rule_failing_at_run_time_does_not_match() -> None:
    definition = rules.build(4, [("ratio", 1, "1 / invoices_settled > 0", None)], "x")

    assert definition.evaluate(_features(invoices_settled=0)).cohort == "x"


def test_survey_reports_flows_overlaps_with_winner_and_catch_all_only() -> None:
    definition = rules.build(
        5,
        [
            ("card", 1, 'payment_method == "card"', None),
            ("annual", 2, 'billing_cycle == "annual"', None),
        ],
        "standard",
    )
    rows = [
        ("cus-1", _features(payment_method="card", billing_cycle="annual"), "old"),
        ("cus-2", _features(payment_method="card"), "card"),
        ("cus-3", _features(), "old"),
    ]

    result = survey(definition, rows, sample_size=5)

    assert {k: (f.count, f.samples) for k, f in result.flows.items()} == {
        ("old", "card"): (1, ["cus-1"]),
        ("card", "card"): (1, ["cus-2"]),
        ("old", "standard"): (1, ["cus-3"]),
    }
    assert result.moving == 2
    overlap = result.overlaps[("card", "annual")]
    assert (overlap.winner, overlap.count) == ("card", 1)
    assert (result.default_only, result.default_samples) == (1, ["cus-3"])


def test_tenure_marks_are_the_bounds_rules_compare_the_tenure_with() -> None:
    definition = rules.build(
        1,
        [
            ("young-de", 10, 'tenure_days < 2 * 365 && country == "DE"', None),
            ("settled-in", 20, "30 <= tenure_days || invoices_settled > 12", None),
            ("late", 30, "avg_days_late > 10.0", None),
        ],
        "standard",
    )
    untimed = rules.build(1, [("late", 10, "avg_days_late > 10.0", None)], "standard")

    assert definition.tenure_marks == (30, 31, 730, 731)
    assert untimed.tenure_marks == ()
