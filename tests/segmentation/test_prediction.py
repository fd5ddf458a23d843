"""The late-payment model learns online from settlements, without leaking outcomes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from arbor_segmentation.domain import engine
from arbor_segmentation.domain.features import CustomerState, features
from arbor_segmentation.domain.prediction import LatePaymentModel
from arbor_shared.events import InvoiceIssued, InvoiceSettled

START = date(2024, 1, 1)


def _at(day: date) -> datetime:
    return datetime.combine(day, time(12), UTC)


def _issue(customer: str, n: int) -> InvoiceIssued:
    issued = START + timedelta(days=30 * n)
    return InvoiceIssued(
        customer_id=customer,
        invoice_id=f"{customer}-{n}",
        currency="EUR",
        amount_minor=10_000,
        issue_date=issued,
        due_date=issued + timedelta(days=30),
        issued_at=_at(issued),
    )


def _settle(issued: InvoiceIssued, days_late: int) -> InvoiceSettled:
    settled = issued.due_date + timedelta(days=days_late)
    return InvoiceSettled(
        customer_id=issued.customer_id,
        invoice_id=issued.invoice_id,
        currency="EUR",
        issue_date=issued.issue_date,
        due_date=issued.due_date,
        amount_minor=10_000,
        paid_minor=10_000,
        credited_minor=0,
        written_off_minor=0,
        settled_by="payment",
        settled_at=_at(settled),
        settled_date=settled,
    )


def _history(model: LatePaymentModel, customer: str, days_late: int) -> CustomerState:
    state = CustomerState(customer)
    for n in range(12):
        issued = _issue(customer, n)
        settled = _settle(issued, days_late)
        engine.apply(
            state, issued, at=issued.issued_at, as_of=issued.issued_at, model=model
        )
        engine.apply(
            state, settled, at=settled.settled_at, as_of=settled.settled_at, model=model
        )
    return state


def test_late_payers_next_invoice_is_scored_likelier_late_than_punctual_payers() -> (
    None
):
    model = LatePaymentModel()
    late = _history(model, "cus-late", days_late=20)
    punctual = _history(model, "cus-ok", days_late=-5)
    next_late, next_ok = _issue("cus-late", 12), _issue("cus-ok", 12)
    now = next_late.issued_at

    late_risk = engine.apply(late, next_late, at=now, as_of=now, model=model)
    ok_risk = engine.apply(punctual, next_ok, at=now, as_of=now, model=model)

    assert model.examples == 24
    assert late_risk.assessments[next_late.invoice_id].late_probability > 0.7
    assert ok_risk.assessments[next_ok.invoice_id].late_probability < 0.3
    assert features(late, now)["max_late_probability"] == round(
        late_risk.assessments[next_late.invoice_id].late_probability, 4
    )
    late_pay = late_risk.assessments[next_late.invoice_id].expected_pay_date
    assert late_pay == next_late.due_date + timedelta(days=20)


def test_deferred_learning_returns_the_example_scored_before_the_due_date() -> None:
    model = LatePaymentModel()
    state = CustomerState("cus-1")
    issued = _issue("cus-1", 0)
    settled = _settle(issued, days_late=9)
    engine.apply(
        state, issued, at=issued.issued_at, as_of=issued.issued_at, model=model
    )
    scored_at_issue = state.open[issued.invoice_id].model_inputs

    applied = engine.apply(
        state,
        settled,
        at=settled.settled_at,
        as_of=settled.settled_at,
        model=model,
        defer_learning=True,
    )

    assert model.examples == 0
    assert applied.example is not None
    assert (applied.example.invoice_id, applied.example.late) == (
        issued.invoice_id,
        True,
    )
    assert applied.example.inputs == scored_at_issue
