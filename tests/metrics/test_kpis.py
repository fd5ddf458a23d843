"""Each KPI formula against examples computed by hand."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

from arbor_metrics.domain.facts import state_as_of
from arbor_metrics.domain.kpis import (
    Period,
    aging,
    bucket,
    credit_sales,
    days_to_pay,
    on_time,
)
from tests.metrics.factories import balance, invoice, settled

AS_OF = date(2024, 3, 31)
MARCH = Period(date(2024, 3, 1), AS_OF)


def _states(*invoices: object) -> list:  # type: ignore[type-arg]
    found = [state_as_of(i, AS_OF) for i in invoices]  # type: ignore[arg-type]
    return [s for s in found if s is not None]


def _due_in_march() -> list:  # type: ignore[type-arg]
    issue = date(2024, 2, 1)
    return _states(
        invoice(
            "early", issue, date(2024, 3, 2), 100, settled(date(2024, 3, 1), amount=100)
        ),
        invoice(
            "late",
            issue,
            date(2024, 3, 10),
            300,
            settled(date(2024, 3, 12), amount=300),
        ),
        invoice("open", issue, date(2024, 3, 15), 500),
        invoice(
            "void",
            issue,
            date(2024, 3, 5),
            700,
            settled(date(2024, 3, 3), amount=700, by="void", paid=0),
        ),
        invoice("future", issue, date(2024, 4, 1), 900),
        invoice(
            "february",
            issue,
            date(2024, 2, 28),
            1100,
            settled(date(2024, 2, 20), amount=1100),
        ),
    )


def test_on_time_counts_open_past_due_as_late_and_skips_voided() -> None:
    result = on_time(_due_in_march(), MARCH, grace_days=0)
    assert (result.invoices_due, result.paid_on_time) == (3, 1)
    assert result.rate == Fraction(1, 3)
    assert (result.amount_due_minor, result.amount_paid_on_time_minor) == (900, 100)
    assert result.amount_rate == Fraction(1, 9)


def test_grace_days_turn_a_slightly_late_payment_on_time() -> None:
    result = on_time(_due_in_march(), MARCH, grace_days=2)
    assert result.rate == Fraction(2, 3)
    assert result.amount_rate == Fraction(4, 9)


def test_no_invoice_due_gives_no_rate_rather_than_zero() -> None:
    assert on_time([], MARCH, grace_days=0).rate is None


def test_days_to_pay_mean_median_p90_and_days_late() -> None:
    issue = date(2024, 2, 20)
    due = date(2024, 3, 1)
    paid_after = [10, 20, 30, 40]
    states = _states(
        *(
            invoice(
                f"i{d}",
                issue,
                due,
                100,
                settled(date.fromordinal(issue.toordinal() + d), amount=100),
            )
            for d in paid_after
        ),
        invoice(
            "earlier",
            date(2024, 1, 1),
            date(2024, 1, 31),
            100,
            settled(date(2024, 2, 10), amount=100),
        ),
    )
    result = days_to_pay(states, MARCH)
    # Settled in March: 10 days (Mar 1), 20, 30, 40; the February settlement is out.
    assert result.invoices_settled == 4
    assert result.mean_days == 25
    assert result.median_days == 25
    assert result.p90_days == 40
    # Due Mar 1: settled Mar 1, 11, 21, 31 -> late 0, 10, 20, 30.
    assert (result.total_days_late, result.paid_late, result.max_days_late) == (
        60,
        3,
        30,
    )
    assert result.mean_days_late == 15


def test_p90_is_nearest_rank_and_median_of_odd_count_is_the_middle() -> None:
    issue = date(2024, 3, 1)
    states = _states(
        *(
            invoice(
                f"i{d}",
                issue,
                issue,
                1,
                settled(date.fromordinal(issue.toordinal() + d), amount=1),
            )
            for d in range(11)
        )
    )
    result = days_to_pay(states, MARCH)
    # Eleven values 0..10: rank ceil(0.9 * 11) = 10 -> the value 9.
    assert result.median_days == 5
    assert result.p90_days == 9


def test_aging_buckets_by_days_past_due_at_the_boundaries() -> None:
    def open_due(days_past_due: int, amount: int) -> object:
        due = date.fromordinal(AS_OF.toordinal() - days_past_due)
        return invoice(f"d{days_past_due}", date(2023, 1, 1), due, amount)

    states = _states(
        open_due(0, 1),
        open_due(1, 2),
        open_due(30, 4),
        open_due(31, 8),
        open_due(60, 16),
        open_due(61, 32),
        open_due(90, 64),
        open_due(91, 128),
        invoice(
            "paid",
            date(2023, 1, 1),
            date(2023, 2, 1),
            256,
            settled(date(2023, 3, 1), amount=256),
        ),
        invoice(
            "partly",
            date(2024, 3, 1),
            date(2024, 4, 30),
            1000,
            balance(date(2024, 3, 5), 600, amount=1000, paid=400),
        ),
    )
    result = aging(states, AS_OF)
    assert result.buckets_minor == {
        "current": 1 + 600,
        "1_30": 2 + 4,
        "31_60": 8 + 16,
        "61_90": 32 + 64,
        "90_plus": 128,
    }
    assert result.buckets_count["current"] == 2
    assert (result.open_minor, result.overdue_minor) == (855, 254)
    assert [bucket(d) for d in (-5, 0, 1, 30, 31, 60, 61, 90, 91)] == [
        "current",
        "current",
        "1_30",
        "1_30",
        "31_60",
        "31_60",
        "61_90",
        "61_90",
        "90_plus",
    ]


def test_written_off_invoice_leaves_aging_but_stays_a_credit_sale() -> None:
    written_off = invoice(
        "w",
        date(2024, 3, 1),
        date(2024, 3, 5),
        500,
        settled(date(2024, 3, 20), amount=500, by="write_off", written_off=500),
    )
    voided = invoice(
        "v",
        date(2024, 3, 1),
        date(2024, 3, 5),
        700,
        settled(date(2024, 3, 2), amount=700, by="void", paid=0),
    )
    states = _states(written_off, voided)
    assert aging(states, AS_OF).open_minor == 0
    assert credit_sales(states, MARCH) == 500


def test_what_a_partial_write_off_leaves_open_is_still_receivable() -> None:
    partly = invoice(
        "p",
        date(2024, 3, 1),
        date(2024, 3, 10),
        1_000,
        balance(date(2024, 3, 20), 600, amount=1_000, written_off=400),
    )
    states = _states(partly)
    assert aging(states, AS_OF).buckets_minor["1_30"] == 600
    assert on_time(states, MARCH, grace_days=0).invoices_due == 0
