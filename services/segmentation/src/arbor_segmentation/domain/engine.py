"""One event through the domain: update the state, teach the model, re-assess.

The service's consumer and the offline evaluation in ``bench/segmentation`` both go
through :func:`apply`, so the figures measured there are the service's own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from arbor_segmentation.domain import cases, updates
from arbor_segmentation.domain.features import CustomerState
from arbor_segmentation.domain.prediction import (
    Assessment,
    LatePaymentModel,
    assess,
)
from arbor_shared.events import (
    BillingDetailsChanged,
    CustomerBalanceChanged,
    CustomerCreated,
    CustomerUpdated,
    DisputeOpened,
    DisputeResolved,
    EventData,
    InvoiceBalanceChanged,
    InvoiceIssued,
    InvoiceReopened,
    InvoiceSettled,
    InvoiceVoided,
    PaymentFailed,
    PaymentReceived,
    PromiseToPayBroken,
    PromiseToPayKept,
    PromiseToPayMade,
)

Update = Callable[[CustomerState, Any, datetime], updates.Outcome]


def _timeless(update: Callable[[CustomerState, Any], updates.Outcome]) -> Update:
    return lambda state, event, _at: update(state, event)


UPDATES: dict[type[EventData], Update] = {
    CustomerCreated: updates.update_profile,
    CustomerUpdated: updates.update_profile,
    BillingDetailsChanged: _timeless(updates.update_billing_details),
    InvoiceIssued: _timeless(updates.open_issued),
    InvoiceBalanceChanged: _timeless(updates.update_balance),
    InvoiceVoided: _timeless(updates.void),
    InvoiceSettled: _timeless(updates.settle),
    InvoiceReopened: _timeless(updates.reopen),
    CustomerBalanceChanged: _timeless(updates.update_customer_balance),
    PaymentReceived: _timeless(updates.record_payment),
    PaymentFailed: _timeless(cases.record_failure),
    DisputeOpened: _timeless(cases.open_dispute),
    DisputeResolved: _timeless(cases.resolve_dispute),
    PromiseToPayMade: _timeless(cases.make_promise),
    PromiseToPayKept: _timeless(cases.end_promise),
    PromiseToPayBroken: _timeless(cases.end_promise),
}
"""The events that change behaviour features, each with its update."""

_REASSESS_ALL = (InvoiceSettled, DisputeOpened, DisputeResolved, PromiseToPayBroken)


@dataclass
class Applied:
    changed: bool
    assessments: dict[str, Assessment] = field(default_factory=dict)
    example: Example | None = None


@dataclass(frozen=True)
class Example:
    """What the model should learn from one settlement: inputs and whether late."""

    invoice_id: str
    inputs: dict[str, float]
    late: bool


def apply(
    state: CustomerState,
    event: EventData,
    *,
    at: datetime,
    as_of: datetime,
    model: LatePaymentModel,
    defer_learning: bool = False,
) -> Applied:
    """Apply ``event`` (sent at ``at``) to ``state`` and keep the model current.

    ``as_of`` is the service's "now": the day open invoices are assessed on. With
    ``defer_learning`` the caller learns ``Applied.example`` itself (after commit).
    """
    outcome = UPDATES[type(event)](state, event, at)
    example = _example(outcome.settlement)
    if example is not None and not defer_learning:
        model.learn(example.inputs, example.late)
    if not outcome.changed:
        return Applied(changed=False)
    if isinstance(event, _REASSESS_ALL):
        targets = list(state.open)
    else:
        targets = [outcome.opened] if outcome.opened else []
    today = state.local_date(as_of)
    assessments = {i: _assess(model, state, i, today) for i in targets}
    return Applied(True, assessments, example)


def _example(settlement: updates.Settlement | None) -> Example | None:
    if settlement is None or not settlement.model_inputs:
        return None
    late = settlement.closed.days_late > 0
    return Example(settlement.invoice_id, settlement.model_inputs, late)


def reassess(
    state: CustomerState, *, as_of: datetime, model: LatePaymentModel
) -> dict[str, Assessment]:
    """Assess every open invoice again, e.g. once one of them falls due."""
    today = state.local_date(as_of)
    return {i: _assess(model, state, i, today) for i in list(state.open)}


def _assess(
    model: LatePaymentModel, state: CustomerState, invoice_id: str, today: date
) -> Assessment:
    invoice = state.open[invoice_id]
    assessment = assess(model, state, invoice, today)
    invoice.late_probability = round(assessment.late_probability, 4)
    invoice.expected_pay_date = assessment.expected_pay_date
    # The model learns what it knew on the due date, the moment collection acts on:
    # the last inputs scored up to then, all known before the invoice's own payment.
    if today <= invoice.due_date or invoice.model_inputs is None:
        invoice.model_inputs = assessment.inputs
    return assessment
