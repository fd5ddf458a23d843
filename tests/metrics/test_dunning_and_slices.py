"""Dunning effectiveness, billing-month curves and cohort and variant slices."""

from __future__ import annotations

from datetime import UTC, date, datetime
from fractions import Fraction

from arbor_metrics.domain.compute import KpiQuery, compute
from arbor_metrics.domain.facts import (
    CohortHistory,
    Facts,
    Membership,
    Promise,
    Reminder,
)
from tests.metrics.factories import balance, invoice, settled

AS_OF = date(2024, 3, 31)


def _reminder(invoice_id: str, day: date, balance_minor: int, variant: str) -> Reminder:
    sent = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
    return Reminder(invoice_id, "first", sent, balance_minor, "standard", variant)


def _dunning_facts() -> Facts:
    invoices = (
        invoice(
            "quick",
            date(2024, 1, 1),
            date(2024, 1, 31),
            1_000,
            settled(date(2024, 2, 8), amount=1_000),
        ),
        invoice(
            "slow",
            date(2024, 1, 1),
            date(2024, 1, 31),
            2_000,
            balance(date(2024, 2, 20), 500, amount=2_000, paid=1_500),
        ),
        invoice(
            "lost",
            date(2024, 1, 1),
            date(2024, 1, 31),
            4_000,
            settled(date(2024, 3, 1), amount=4_000, by="write_off", written_off=4_000),
        ),
    )
    reminders = (
        _reminder("quick", date(2024, 2, 5), 1_000, "a"),
        _reminder("slow", date(2024, 2, 5), 2_000, "b"),
        _reminder("lost", date(2024, 2, 5), 4_000, "a"),
        # A later step does not move the invoice's entry into dunning.
        Reminder(
            "quick", "second", datetime(2024, 2, 7, tzinfo=UTC), 1_000, "standard", "a"
        ),
    )
    promises = (
        Promise("p1", "slow", date(2024, 2, 15), date(2024, 2, 15), None),
        Promise("p2", "slow", date(2024, 3, 10), None, date(2024, 3, 11)),
        Promise("p3", "quick", date(2024, 2, 9), date(2024, 2, 8), None),
        Promise("p4", "lost", date(2024, 4, 15), None, None),
    )
    return Facts(invoices, CohortHistory([]), reminders, promises)


def test_paid_within_n_days_of_the_first_reminder_and_amount_recovered() -> None:
    kpis = compute(_dunning_facts(), KpiQuery(as_of=AS_OF, currency="EUR"))
    found = kpis.dunning
    # quick settled 3 days after; slow only part-paid; lost written off (not paid).
    assert (found.reminded_invoices, found.paid_within) == (3, 1)
    assert found.paid_within_rate == Fraction(1, 3)
    assert (found.entered_minor, found.recovered_minor) == (7_000, 2_500)
    assert found.recovery_rate == Fraction(5, 14)


def test_promise_kept_rate_counts_resolved_promises_due_in_the_window() -> None:
    found = compute(_dunning_facts(), KpiQuery(as_of=AS_OF, currency="EUR")).dunning
    # p4 falls due after the as-of day.
    assert (found.promises_due, found.promises_kept, found.promises_broken) == (3, 2, 1)
    assert found.promise_kept_rate == Fraction(2, 3)


def test_variant_slice_keeps_invoices_whose_first_reminder_used_it() -> None:
    query = KpiQuery(as_of=AS_OF, currency="EUR", variant="a")
    kpis = compute(_dunning_facts(), query)
    assert kpis.invoices == 2
    assert (kpis.dunning.reminded_invoices, kpis.dunning.paid_within) == (2, 1)


def test_billing_month_curve_shares_paid_within_0_30_60_90_days() -> None:
    invoices = (
        invoice(
            "same-day",
            date(2024, 1, 5),
            date(2024, 2, 4),
            1_000,
            settled(date(2024, 1, 5), amount=1_000),
        ),
        invoice(
            "36-days",
            date(2024, 1, 20),
            date(2024, 2, 19),
            2_000,
            balance(date(2024, 2, 1), 1_500, amount=2_000, paid=500),
            settled(date(2024, 2, 25), amount=2_000),
        ),
        invoice("open", date(2024, 2, 1), date(2024, 3, 2), 4_000),
    )
    facts = Facts(invoices, CohortHistory([]))
    months = compute(facts, KpiQuery(as_of=AS_OF, currency="EUR")).billing_months
    january, february = months
    assert (january.month, january.invoices, january.invoiced_minor) == (
        date(2024, 1, 1),
        2,
        3_000,
    )
    # 36-days paid 500 on day 12, the rest on day 36.
    assert january.paid_within_minor == {0: 1_000, 30: 1_500, 60: 3_000, 90: 3_000}
    assert february.paid_within_minor == {0: 0, 30: 0, 60: 0, 90: 0}


def _moved_customer_facts() -> Facts:
    moves = [
        Membership("cus-1", 1, "punctual", datetime(2024, 1, 1, tzinfo=UTC)),
        Membership("cus-1", 2, "late", datetime(2024, 2, 15, tzinfo=UTC)),
    ]
    invoices = (
        invoice("jan", date(2024, 1, 10), date(2024, 2, 9), 100, customer="cus-1"),
        invoice("mar", date(2024, 3, 1), date(2024, 3, 31), 200, customer="cus-1"),
        invoice("other", date(2024, 1, 10), date(2024, 2, 9), 400, customer="cus-2"),
    )
    return Facts(invoices, CohortHistory(moves))


def test_cohort_at_issue_follows_membership_on_each_issue_day() -> None:
    facts = _moved_customer_facts()
    punctual = KpiQuery(
        as_of=AS_OF, currency="EUR", cohort="punctual", cohort_basis="issued"
    )
    late = KpiQuery(as_of=AS_OF, currency="EUR", cohort="late", cohort_basis="issued")
    assert compute(facts, punctual).aging.open_minor == 100
    assert compute(facts, late).aging.open_minor == 200


def test_cohort_as_of_puts_every_invoice_under_the_current_cohort() -> None:
    facts = _moved_customer_facts()
    late = KpiQuery(as_of=AS_OF, currency="EUR", cohort="late")
    unassigned = KpiQuery(as_of=AS_OF, currency="EUR", cohort="unassigned")
    assert compute(facts, late).aging.open_minor == 300
    assert compute(facts, unassigned).aging.open_minor == 400


def test_other_currencies_are_never_added_in() -> None:
    facts = Facts(
        (
            invoice("eur", date(2024, 3, 1), date(2024, 3, 31), 100),
            invoice("usd", date(2024, 3, 1), date(2024, 3, 31), 999, currency="USD"),
        ),
        CohortHistory([]),
    )
    kpis = compute(facts, KpiQuery(as_of=AS_OF, currency="EUR"))
    assert (kpis.invoices, kpis.aging.open_minor) == (1, 100)
