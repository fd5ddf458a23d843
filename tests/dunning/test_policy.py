"""Policies: validation, deterministic experiment arms, hand-over and fees."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from arbor_dunning.domain.calendar import Locale
from arbor_dunning.domain.errors import InvalidPolicyError
from arbor_dunning.domain.planner import (
    DueStep,
    fee_amount,
    fee_applies,
    fee_period,
    hand_over,
    plan_invoice,
    terms_worsened,
    triage_due,
)
from arbor_dunning.domain.policy import (
    HOLDOUT,
    Fee,
    Policy,
    Step,
    Variant,
    default_policy,
)

BERLIN = Locale("Europe/Berlin", "DE")


def test_assignment_is_deterministic_and_follows_the_split() -> None:
    gentle = Variant("gentle", 50, (Step("soft", 3, "email", "courtesy"),))
    policy = Policy(
        "default", 1, default_policy().steps, variants=(gentle,), holdout_percent=10
    )

    arms = Counter(policy.assign(f"cus-{n}")[0] for n in range(4000))

    assert policy.assign("cus-7") == policy.assign("cus-7")
    assert set(arms) == {"gentle", "control", HOLDOUT}
    assert 300 < arms[HOLDOUT] < 500
    assert 1800 < arms["gentle"] < 2200
    assert (
        policy.assign(
            next(
                f"cus-{n}"
                for n in range(4000)
                if policy.assign(f"cus-{n}")[0] == HOLDOUT
            )
        )[1]
        == ()
    )


def test_policy_without_experiment_has_no_variant() -> None:
    assert default_policy().assign("cus-1") == (None, default_policy().steps)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ((Step("a", 3, "email", "x"), Step("b", 1, "email", "x")), "increasing"),
        ((Step("a", 1, "email", "x"), Step("a", 2, "email", "x")), "unique"),
        ((Step("a", 1, "email", "x", fee=Fee()),), "no amount"),
    ],
)
def test_invalid_ladders_are_refused_with_the_reason(
    steps: tuple[Step, ...], message: str
) -> None:
    with pytest.raises(InvalidPolicyError, match=message):
        Policy("default", 1, steps).validate()


def test_hand_over_keeps_only_future_steps_beyond_the_last_sent() -> None:
    plan = plan_invoice(
        default_policy(), customer_id="c", due_date=date(2026, 3, 16), locale=BERLIN
    )
    now = datetime(2026, 3, 20, tzinfo=UTC)

    remaining = hand_over(plan, now=now, last_sent_offset=0)

    assert [p.step.name for p in remaining] == ["plan_offer", "late_fee", "escalation"]
    assert [p.step.name for p in hand_over(plan, now=now, last_sent_offset=14)] == [
        "escalation"
    ]


def test_terms_worsen_when_an_incentive_goes_or_a_fee_appears() -> None:
    old = (Step("a", 0, "email", "x", incentive=None), *default_policy().steps[2:3])
    new = (Step("b", 5, "email", "x", fee=Fee(fixed_minor=500)),)

    assert terms_worsened(old, new) == [
        "incentive_removed:payment_plan_offer",
        "fee_added",
    ]
    assert terms_worsened(new, new) == []


def test_catch_up_sends_latest_and_misses_the_rest() -> None:
    now = datetime(2026, 3, 30, tzinfo=UTC)
    due = [
        DueStep(1, -3, now - timedelta(days=17)),
        DueStep(2, 7, now - timedelta(days=7)),
        DueStep(3, 0, now - timedelta(days=14)),
    ]

    chosen, missed = triage_due(due, now=now, catch_up="latest_only")
    skipped, all_missed = triage_due(due, now=now, catch_up="skip_missed")

    assert chosen == due[1]
    assert [m.key for m in missed] == [1, 3]
    assert skipped is None
    assert len(all_missed) == 3


def test_percentage_fee_rounds_half_even_and_respects_the_cap() -> None:
    fee = Fee(percent=Decimal("1.5"), cap_minor=2_000)

    assert fee_amount(fee, balance_minor=10_050, assessed_minor=0) == 151  # 150.75
    assert fee_amount(fee, balance_minor=10_030, assessed_minor=0) == 150  # 150.45
    assert fee_amount(fee, balance_minor=500_000, assessed_minor=0) == 2_000
    assert fee_amount(fee, balance_minor=500_000, assessed_minor=1_500) == 500
    assert fee_amount(fee, balance_minor=500_000, assessed_minor=2_000) == 0


def test_grace_period_ends_at_local_midnight_after_its_last_day() -> None:
    fee = Fee(fixed_minor=2_500, grace_days=7)
    due = date(2026, 3, 16)

    def applies(at: datetime) -> bool:
        return fee_applies(fee, due_date=due, at=at, locale=BERLIN)

    assert not applies(datetime(2026, 3, 23, 22, 59, tzinfo=UTC))  # 23:59 in Berlin
    assert applies(datetime(2026, 3, 23, 23, 0, tzinfo=UTC))  # 24 March begins


def test_fee_period_is_the_customers_local_month() -> None:
    # 00:30 on 1 April in Berlin (CEST) is still 31 March in UTC.
    assert fee_period(datetime(2026, 3, 31, 22, 30, tzinfo=UTC), BERLIN) == "2026-04"
    assert fee_period(datetime(2026, 3, 31, 21, 30, tzinfo=UTC), BERLIN) == "2026-03"
