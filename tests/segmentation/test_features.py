"""Behaviour features kept incrementally equal a direct computation from the facts."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from arbor_segmentation.domain import codec, engine
from arbor_segmentation.domain.features import (
    CustomerState,
    days_late_trend,
    features,
    recent_days_late,
    timers,
    window_counts,
)
from arbor_segmentation.domain.prediction import LatePaymentModel
from arbor_shared.events import (
    CustomerBalanceChanged,
    DisputeOpened,
    DisputeResolved,
    EventData,
    InvoiceIssued,
    InvoiceReopened,
    InvoiceSettled,
    PaymentFailed,
    PaymentReceived,
    PromiseToPayBroken,
    PromiseToPayMade,
)
from tests.segmentation.conftest import customer

START = date(2024, 1, 1)


@dataclass(frozen=True)
class Fact:
    """One invoice as a finance user would write it down."""

    invoice_id: str
    issued: date
    due: date
    settled: date | None
    amount: int
    by_payment: bool


def _at(day: date) -> datetime:
    return datetime.combine(day, time(12), UTC)


def _issued(fact: Fact) -> InvoiceIssued:
    return InvoiceIssued(
        customer_id="cus-1",
        invoice_id=fact.invoice_id,
        currency="EUR",
        amount_minor=fact.amount,
        issue_date=fact.issued,
        due_date=fact.due,
        issued_at=_at(fact.issued),
    )


def _settled(fact: Fact) -> InvoiceSettled:
    assert fact.settled is not None
    return InvoiceSettled(
        customer_id="cus-1",
        invoice_id=fact.invoice_id,
        currency="EUR",
        issue_date=fact.issued,
        due_date=fact.due,
        amount_minor=fact.amount,
        paid_minor=fact.amount if fact.by_payment else 0,
        credited_minor=0 if fact.by_payment else fact.amount,
        written_off_minor=0,
        settled_by="payment" if fact.by_payment else "credit",
        settled_at=_at(fact.settled),
        settled_date=fact.settled,
    )


facts_strategy = st.lists(
    st.tuples(
        st.integers(0, 500),
        st.integers(0, 60),
        st.one_of(st.none(), st.integers(0, 120)),
        st.integers(1, 1_000_000),
        st.booleans(),
    ),
    max_size=25,
)


def _facts(raw: list[tuple[int, int, int | None, int, bool]]) -> list[Fact]:
    return [
        Fact(
            invoice_id=f"inv-{i}",
            issued=START + timedelta(days=issue),
            due=START + timedelta(days=issue + terms),
            settled=START + timedelta(days=issue + pay) if pay is not None else None,
            amount=amount,
            by_payment=by_payment,
        )
        for i, (issue, terms, pay, amount, by_payment) in enumerate(raw)
    ]


def _replay(events: Sequence[EventData], as_of: datetime) -> CustomerState:
    state = CustomerState("cus-1")
    model = LatePaymentModel()
    for event in events:
        engine.apply(state, event, at=as_of, as_of=as_of, model=model)
    return state


def _expected(facts: list[Fact], today: date) -> dict[str, object]:
    paid = [f for f in facts if f.settled and f.by_payment]
    open_ = [f for f in facts if f.settled is None]
    late = sorted(max(0, (f.settled - f.due).days) for f in paid if f.settled)
    overdue = [f for f in open_ if f.due < today]
    expected: dict[str, object] = {
        "invoices_settled": len(paid),
        "avg_days_late": sum(late) / len(paid) if paid else 0.0,
        "p90_days_late": float(late[math.ceil(0.9 * len(late)) - 1]) if late else 0.0,
        "avg_days_to_pay": (
            sum((f.settled - f.issued).days for f in paid if f.settled) / len(paid)
            if paid
            else 0.0
        ),
        "lifetime_value_minor": sum(f.amount for f in paid),
        "open_balance_minor": sum(f.amount for f in open_),
        "overdue_balance_minor": sum(f.amount for f in overdue),
        "overdue_invoices": len(overdue),
    }
    due_all = len(paid) + len(overdue)
    on_time = sum(1 for f in paid if f.settled and f.settled <= f.due)
    expected["on_time_rate_all"] = on_time / due_all if due_all else 1.0
    for days in (90, 365):
        expected[f"on_time_rate_{days}"] = _window_rate(paid, open_, today, days)
    return expected


def _window_rate(paid: list[Fact], open_: list[Fact], today: date, days: int) -> float:
    start = today - timedelta(days=days)
    due = [f for f in paid if start < f.due <= today] + [
        f for f in open_ if start < f.due < today
    ]
    on_time = [f for f in due if f.settled and f.settled <= f.due]
    return len(on_time) / len(due) if due else 1.0


@settings(max_examples=150, deadline=None)
@given(facts_strategy, st.randoms(use_true_random=False), st.integers(0, 900))
def test_incremental_features_equal_direct_computation_despite_order_and_duplicates(
    raw: list[tuple[int, int, int | None, int, bool]],
    shuffler: random.Random,
    offset: int,
) -> None:
    facts = _facts(raw)
    last = max([f.settled or f.issued for f in facts], default=START)
    as_of = _at(max(last, START + timedelta(days=offset)))
    # Invoices and ledger facts travel on different topics: each fact may arrive up
    # to a month late relative to the others, and any may be delivered again later.
    timed: list[tuple[date, EventData]] = [(f.issued, _issued(f)) for f in facts]
    timed += [(f.settled, _settled(f)) for f in facts if f.settled]
    arrivals = sorted(
        (
            (day + timedelta(days=shuffler.randint(0, 30)), i)
            for i, (day, _) in enumerate(timed)
        ),
    )
    events = [timed[i][1] for _, i in arrivals]
    events += shuffler.sample(events, k=min(3, len(events)))
    events += [_issued(f) for f in facts if shuffler.random() < 0.3]

    state = _replay(events, as_of)

    values = features(state, as_of)
    expected = _expected(facts, as_of.date())
    assert {k: values[k] for k in expected} == expected


@settings(max_examples=150, deadline=None)
@given(facts_strategy, st.integers(0, 900))
def test_features_walked_once_equal_each_feature_computed_on_its_own(
    raw: list[tuple[int, int, int | None, int, bool]], offset: int
) -> None:
    events = _profile_and_cases()
    events += [e for f in _facts(raw) for e in [_issued(f), *_settled_if(f)]]
    as_of = _at(START + timedelta(days=offset))
    state = _replay(events, as_of)
    today = as_of.date()

    values = features(state, as_of)

    for days in (90, 365):
        due, on_time = window_counts(state, today, days)
        assert values[f"invoices_due_{days}"] == due
        assert values[f"on_time_rate_{days}"] == (on_time / due if due else 1.0)
    assert values["days_late_trend"] == days_late_trend(state)
    assert values["last_days_late"] == sum(recent_days_late(state, 1))
    assert {k: values[k] for k in _balances(state, today)} == _balances(state, today)


def _settled_if(fact: Fact) -> list[EventData]:
    return [_settled(fact)] if fact.settled else []


def _balances(state: CustomerState, today: date) -> dict[str, object]:
    mine = [i for i in state.open.values() if i.currency == state.currency]
    reported = state.balances.get(state.currency)
    chances = [i.late_probability for i in state.open.values()]
    return {
        "open_balance_minor": reported[0] if reported else sum(i.balance for i in mine),
        "overdue_balance_minor": sum(i.balance for i in mine if i.due_date < today),
        "overdue_invoices": sum(i.due_date < today for i in state.open.values()),
        "max_days_overdue": max(
            [(today - i.due_date).days for i in state.open.values()] + [0]
        ),
        "max_late_probability": max([c for c in chances if c is not None], default=0.0),
    }


def test_on_time_rate_window_ages_out_old_late_payments() -> None:
    late = Fact(
        "inv-1",
        START,
        START + timedelta(days=30),
        START + timedelta(days=50),
        100,
        True,
    )
    punctual = Fact(
        "inv-2",
        START + timedelta(days=60),
        START + timedelta(days=90),
        START + timedelta(days=85),
        100,
        True,
    )
    state = _replay(
        [_issued(late), _settled(late), _issued(punctual), _settled(punctual)],
        _at(START),
    )

    soon = features(state, _at(START + timedelta(days=100)))
    later = features(state, _at(START + timedelta(days=125)))

    assert (soon["on_time_rate_90"], soon["invoices_due_90"]) == (0.5, 2)
    assert (later["on_time_rate_90"], later["invoices_due_90"]) == (1.0, 1)
    assert later["on_time_rate_365"] == 0.5


def test_open_invoice_counts_late_only_after_its_due_date_has_passed() -> None:
    fact = Fact("inv-1", START, START + timedelta(days=30), None, 5_000, True)
    state = _replay([_issued(fact)], _at(START))

    on_due_date = features(state, _at(START + timedelta(days=30)))
    day_after = features(state, _at(START + timedelta(days=31)))

    assert (on_due_date["overdue_invoices"], on_due_date["invoices_due_90"]) == (0, 0)
    assert (day_after["overdue_invoices"], day_after["overdue_balance_minor"]) == (
        1,
        5_000,
    )
    assert (day_after["on_time_rate_90"], day_after["max_days_overdue"]) == (0.0, 1)


def test_reopened_invoice_is_no_longer_counted_as_settled() -> None:
    fact = Fact(
        "inv-1",
        START,
        START + timedelta(days=30),
        START + timedelta(days=40),
        700,
        True,
    )
    reopened = InvoiceReopened(
        customer_id="cus-1",
        invoice_id="inv-1",
        currency="EUR",
        balance_minor=700,
        reopened_at=_at(START + timedelta(days=45)),
    )
    state = _replay([_issued(fact), _settled(fact), reopened], _at(START))

    values = features(state, _at(START + timedelta(days=46)))

    assert (values["invoices_settled"], values["lifetime_value_minor"]) == (0, 0)
    assert (values["open_balance_minor"], values["overdue_invoices"]) == (700, 1)


def test_older_profile_arriving_late_does_not_overwrite_newer_one() -> None:
    state = CustomerState("cus-1")
    model = LatePaymentModel()
    now = _at(START)
    newer = customer("cus-1", payment_method="card")
    older = customer("cus-1", payment_method="cheque")

    engine.apply(state, newer, at=now, as_of=now, model=model)
    stale = engine.apply(
        state, older, at=now - timedelta(hours=1), as_of=now, model=model
    )

    assert not stale.changed
    assert features(state, now)["payment_method"] == "card"


def test_cases_count_once_per_business_key() -> None:
    opened = DisputeOpened(
        customer_id="cus-1",
        dispute_id="d-1",
        invoice_id="inv-1",
        currency="EUR",
        amount_minor=100,
        reason="wrong amount",
        opened_at=_at(START),
    )
    lost = DisputeResolved(
        customer_id="cus-1",
        dispute_id="d-1",
        invoice_id="inv-1",
        outcome="lost",
        resolved_at=_at(START),
    )
    promise = PromiseToPayMade(
        customer_id="cus-1",
        promise_id="p-1",
        invoice_id="inv-1",
        currency="EUR",
        amount_minor=100,
        promised_date=START,
        made_at=_at(START),
    )
    broken = PromiseToPayBroken(
        customer_id="cus-1",
        promise_id="p-1",
        invoice_id="inv-1",
        promised_date=START,
        broken_at=_at(START),
    )
    events: list[EventData] = [
        opened,
        opened,
        promise,
        lost,
        broken,
        lost,
        promise,
        broken,
    ]
    values = features(_replay(events, _at(START)), _at(START))

    assert (
        values["disputes_total"],
        values["disputes_open"],
        values["disputes_lost"],
    ) == (1, 0, 1)
    assert (values["promises_made"], values["promises_broken"]) == (1, 1)


def _profile_and_cases() -> list[EventData]:
    at = _at(START)
    return [
        customer("cus-1", preferred_channel="email"),
        CustomerBalanceChanged(
            customer_id="cus-1",
            currency="EUR",
            open_balance_minor=-5,
            unapplied_cash_minor=5,
            changed_at=at,
        ),
        PaymentFailed(
            customer_id="cus-1",
            payment_id="pay-1",
            currency="EUR",
            amount_minor=100,
            reason="card declined",
            failed_at=at,
        ),
        PaymentReceived(
            customer_id="cus-1",
            payment_id="pay-2",
            currency="EUR",
            amount_minor=100,
            received_at=at,
        ),
        DisputeOpened(
            customer_id="cus-1",
            dispute_id="d-1",
            invoice_id="inv-0",
            currency="EUR",
            amount_minor=100,
            reason="wrong amount",
            opened_at=at,
        ),
    ]


@settings(max_examples=50, deadline=None)
@given(facts_strategy)
def test_state_survives_the_database_round_trip(
    raw: list[tuple[int, int, int | None, int, bool]],
) -> None:
    facts = _facts(raw)
    events = _profile_and_cases() + [
        e for f in facts for e in [_issued(f)] + ([_settled(f)] if f.settled else [])
    ]
    state = _replay(events, _at(START + timedelta(days=600)))

    assert codec.load(codec.dump(state)) == state
    assert orjson.loads(codec.dumps(state)) == codec.dump(state)


def test_timers_fire_when_due_dates_pass_and_when_a_settlement_leaves_a_window() -> (
    None
):
    late = Fact(
        "inv-1",
        START,
        START + timedelta(days=30),
        START + timedelta(days=50),
        100,
        True,
    )
    still_open = Fact(
        "inv-2", START + timedelta(days=40), START + timedelta(days=70), None, 100, True
    )
    now = _at(START + timedelta(days=51))
    state = _replay([_issued(late), _settled(late), _issued(still_open)], now)

    wanted = timers(state, now)
    leaves = wanted["window cus-1"]

    assert wanted["inv-2"] == datetime.combine(START + timedelta(days=71), time(), UTC)
    assert leaves == datetime.combine(START + timedelta(days=120), time(), UTC)
    before = features(state, leaves - timedelta(seconds=1))
    after = features(state, leaves)
    assert (before["invoices_due_90"], after["invoices_due_90"]) == (2, 1)
    assert timers(state, leaves)["window cus-1"] == datetime.combine(
        START + timedelta(days=160), time(), UTC
    )
