"""Each invoice's state as of a day, and cohort membership on a day."""

from __future__ import annotations

from datetime import UTC, date, datetime

from arbor_metrics.domain.facts import CohortHistory, Membership, state_as_of
from tests.metrics.factories import balance, invoice, reopened, settled

ISSUE = date(2024, 1, 1)
DUE = date(2024, 1, 31)


def test_invoice_not_yet_issued_has_no_state() -> None:
    assert state_as_of(invoice("i", ISSUE, DUE, 100), date(2023, 12, 31)) is None


def test_partial_payment_lowers_the_open_balance_from_its_day() -> None:
    found = invoice(
        "i", ISSUE, DUE, 100, balance(date(2024, 1, 10), 60, amount=100, paid=40)
    )
    before = state_as_of(found, date(2024, 1, 9))
    after = state_as_of(found, date(2024, 1, 10))
    assert before is not None
    assert after is not None
    assert (before.balance_minor, before.paid_minor) == (100, 0)
    assert (after.balance_minor, after.paid_minor, after.status) == (60, 40, "open")


def test_settlement_sets_the_settled_date_and_zero_balance() -> None:
    found = invoice("i", ISSUE, DUE, 100, settled(date(2024, 2, 3), amount=100))
    state = state_as_of(found, date(2024, 3, 1))
    assert state is not None
    assert (state.settled_date, state.balance_minor, state.paid_minor) == (
        date(2024, 2, 3),
        0,
        100,
    )
    assert state.exclusion is None


def test_reopened_invoice_owes_again_and_loses_its_settlement() -> None:
    found = invoice(
        "i",
        ISSUE,
        DUE,
        100,
        settled(date(2024, 1, 20), amount=100),
        reopened(date(2024, 2, 5), 30),
    )
    settled_then = state_as_of(found, date(2024, 2, 4))
    reopened_now = state_as_of(found, date(2024, 2, 5))
    assert settled_then is not None
    assert reopened_now is not None
    assert settled_then.settled_date == date(2024, 1, 20)
    assert (reopened_now.settled_date, reopened_now.balance_minor) == (None, 30)


def test_zero_balance_before_its_settlement_fact_uses_the_settlement_date() -> None:
    # The ledger emits the zero balance at 12:00 UTC; the customer's calendar day is
    # the next one, which only InvoiceSettled carries.
    zero = balance(date(2024, 1, 20), 0, amount=100, paid=100, status="settled")
    settlement = settled(date(2024, 1, 20), amount=100)
    found = invoice("i", ISSUE, DUE, 100, zero, settlement)
    state = state_as_of(found, date(2024, 1, 20))
    assert state is not None
    assert (state.settled_date, state.settled_by) == (date(2024, 1, 20), "payment")


def test_exclusions_name_voided_written_off_and_fully_credited() -> None:
    day = date(2024, 2, 1)
    cases = {
        "voided": settled(day, amount=100, by="void", paid=0),
        "written_off": settled(day, amount=100, by="write_off", written_off=100),
        "fully_credited": settled(day, amount=100, by="credit", credited=100),
    }
    for reason, snapshot in cases.items():
        state = state_as_of(invoice("i", ISSUE, DUE, 100, snapshot), day)
        assert state is not None
        assert state.exclusion == reason


def test_partly_credited_invoice_settled_by_payment_is_not_excluded() -> None:
    snapshot = settled(date(2024, 2, 1), amount=100, credited=30)
    state = state_as_of(invoice("i", ISSUE, DUE, 100, snapshot), date(2024, 2, 1))
    assert state is not None
    assert state.exclusion is None


def _move(version: int, cohort: str, day: int) -> Membership:
    return Membership("cus-1", version, cohort, datetime(2024, 1, day, 9, tzinfo=UTC))


def test_cohort_on_a_day_is_the_newest_version_in_effect() -> None:
    history = CohortHistory([_move(2, "late", 15), _move(1, "punctual", 5)])
    assert history.cohort_on("cus-1", date(2024, 1, 4)) == "unassigned"
    assert history.cohort_on("cus-1", date(2024, 1, 5)) == "punctual"
    assert history.cohort_on("cus-1", date(2024, 1, 15)) == "late"
    assert history.cohort_on("cus-2", date(2024, 1, 15)) == "unassigned"


def test_membership_intervals_close_at_the_next_move() -> None:
    history = CohortHistory([_move(2, "late", 15), _move(1, "punctual", 5)])
    assert history.intervals("cus-1") == [
        ("punctual", _move(1, "", 5).changed_at, _move(2, "", 15).changed_at),
        ("late", _move(2, "", 15).changed_at, None),
    ]
    assert history.counts_on(date(2024, 1, 10)) == {"punctual": 1}
