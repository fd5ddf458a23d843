"""DSO, countback DSO, best possible DSO, ADD, CEI and bad debt by hand."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

from arbor_metrics.domain.compute import KpiQuery, compute
from arbor_metrics.domain.facts import CohortHistory, Facts
from arbor_metrics.domain.kpis import Period
from arbor_metrics.domain.receivables import Receivables, months_back
from tests.metrics.factories import balance, invoice, settled

Q1 = Period(date(2024, 1, 1), date(2024, 3, 31))


def _receivables(**changes: object) -> Receivables:
    values: dict[str, object] = {
        "period": Q1,
        "beginning_ar_minor": 1_000,
        "ending_ar_minor": 3_000,
        "ending_current_ar_minor": 1_500,
        "credit_sales_minor": 9_100,
        "written_off_minor": 455,
        "monthly_sales_minor": {
            date(2024, 1, 1): 4_000,
            date(2024, 2, 1): 3_100,
            date(2024, 3, 1): 2_000,
        },
    }
    return Receivables(**(values | changes))  # type: ignore[arg-type]


def test_simple_and_best_possible_dso_and_add() -> None:
    found = _receivables()
    assert found.dso == Fraction(3_000, 9_100) * 91
    assert found.best_possible_dso == Fraction(1_500, 9_100) * 91
    assert found.add == Fraction(1_500, 9_100) * 91


def test_cei_is_collected_over_collectible_in_percent() -> None:
    # (1000 + 9100 - 3000) / (1000 + 9100 - 1500) * 100
    assert _receivables().cei_percent == Fraction(7_100, 8_600) * 100


def test_bad_debt_ratio_is_written_off_over_credit_sales() -> None:
    assert _receivables().bad_debt_ratio == Fraction(1, 20)


def test_countback_consumes_march_then_part_of_february() -> None:
    # AR 3000: March's 2000 covers 31 days; 1000 of February's 3100 covers
    # 1000/3100 of its 29 days.
    assert _receivables().countback_dso == 31 + Fraction(1_000, 3_100) * 29


def test_countback_stops_at_the_period_start_when_sales_do_not_cover_ar() -> None:
    assert _receivables(ending_ar_minor=50_000).countback_dso == 91


def test_months_back_cover_partial_months_at_both_ends() -> None:
    period = Period(date(2024, 1, 10), date(2024, 3, 15))
    assert months_back(period) == [
        (date(2024, 3, 1), 15),
        (date(2024, 2, 1), 29),
        (date(2024, 1, 1), 22),
    ]


def test_no_sales_gives_no_dso_rather_than_a_division_error() -> None:
    found = _receivables(
        credit_sales_minor=0,
        beginning_ar_minor=0,
        ending_ar_minor=0,
        ending_current_ar_minor=0,
    )
    assert (found.dso, found.cei_percent, found.bad_debt_ratio) == (None, None, None)


def test_receivables_from_invoices_across_the_window() -> None:
    invoices = (
        # Issued before the window and still open at its start: beginning AR.
        invoice(
            "old",
            date(2023, 12, 1),
            date(2023, 12, 31),
            1_000,
            settled(date(2024, 1, 20), amount=1_000),
        ),
        invoice(
            "jan",
            date(2024, 1, 5),
            date(2024, 2, 4),
            4_000,
            settled(date(2024, 2, 1), amount=4_000),
        ),
        invoice(
            "feb",
            date(2024, 2, 5),
            date(2024, 3, 6),
            3_100,
            balance(date(2024, 3, 1), 1_500, amount=3_100, paid=1_600),
        ),
        invoice("mar", date(2024, 3, 5), date(2024, 4, 4), 2_000),
        invoice(
            "bad",
            date(2024, 1, 7),
            date(2024, 2, 6),
            455,
            settled(date(2024, 3, 30), amount=455, by="write_off", written_off=455),
        ),
    )
    facts = Facts(invoices=invoices, cohorts=CohortHistory([]))
    kpis = compute(
        facts, KpiQuery(as_of=date(2024, 3, 31), currency="EUR", window_days=91)
    )
    found = kpis.receivables
    assert found.period == Q1
    assert (found.beginning_ar_minor, found.credit_sales_minor) == (1_000, 9_555)
    # Feb's 1500 is past due (due Mar 6); Mar's 2000 is current.
    assert (found.ending_ar_minor, found.ending_current_ar_minor) == (3_500, 2_000)
    assert found.written_off_minor == 455
    assert found.monthly_sales_minor == {
        date(2024, 1, 1): 4_455,
        date(2024, 2, 1): 3_100,
        date(2024, 3, 1): 2_000,
    }
    assert kpis.aging.overdue_minor == 1_500
