"""The event catalogue: every event type, its data model and its topic."""

from __future__ import annotations

from arbor_shared.events.base import EventData, StrictModel
from arbor_shared.events.billing import (
    Allocation,
    CreditNoteIssued,
    CreditNoteVoided,
    CustomerCreated,
    CustomerUpdated,
    InvoiceAdjusted,
    InvoiceIssued,
    InvoiceLine,
    InvoiceVoided,
    InvoiceWrittenOff,
    PaymentFailed,
    PaymentReceived,
    PaymentRefunded,
)
from arbor_shared.events.cohorts import CohortChanged, InvoiceRiskAssessed
from arbor_shared.events.collections import (
    DisputeOpened,
    DisputeResolved,
    PaymentPlanRequested,
    PromiseToPayBroken,
    PromiseToPayKept,
    PromiseToPayMade,
)
from arbor_shared.events.dunning import (
    ActionReason,
    EscalationRaised,
    IncentiveOffered,
    LateFeeAssessed,
    ReminderCancelled,
    ReminderScheduled,
    ReminderSent,
)
from arbor_shared.events.envelope import Envelope, EnvelopeError
from arbor_shared.events.ledger import (
    CustomerBalanceChanged,
    InvoiceBalanceChanged,
    InvoiceReopened,
    InvoiceSettled,
)
from arbor_shared.events.system import BillingDetailsChanged, ClockAdvanced

EVENT_TYPES: dict[str, type[EventData]] = {
    model.event_type: model
    for model in (
        CustomerCreated,
        CustomerUpdated,
        BillingDetailsChanged,
        InvoiceIssued,
        InvoiceAdjusted,
        InvoiceVoided,
        InvoiceWrittenOff,
        PaymentReceived,
        PaymentFailed,
        PaymentRefunded,
        CreditNoteIssued,
        CreditNoteVoided,
        InvoiceBalanceChanged,
        InvoiceSettled,
        InvoiceReopened,
        CustomerBalanceChanged,
        DisputeOpened,
        DisputeResolved,
        PromiseToPayMade,
        PromiseToPayKept,
        PromiseToPayBroken,
        PaymentPlanRequested,
        CohortChanged,
        InvoiceRiskAssessed,
        ReminderScheduled,
        ReminderSent,
        ReminderCancelled,
        LateFeeAssessed,
        IncentiveOffered,
        EscalationRaised,
        ClockAdvanced,
    )
}


class UnknownEventTypeError(LookupError):
    """The ``ce_type`` names no event in the catalogue."""


def model_for(event_type: str) -> type[EventData]:
    """Return the data model registered for ``event_type``."""
    try:
        return EVENT_TYPES[event_type]
    except KeyError:
        raise UnknownEventTypeError(f"unknown event type {event_type!r}") from None


__all__ = [
    "EVENT_TYPES",
    "ActionReason",
    "Allocation",
    "BillingDetailsChanged",
    "ClockAdvanced",
    "CohortChanged",
    "CreditNoteIssued",
    "CreditNoteVoided",
    "CustomerBalanceChanged",
    "CustomerCreated",
    "CustomerUpdated",
    "DisputeOpened",
    "DisputeResolved",
    "Envelope",
    "EnvelopeError",
    "EscalationRaised",
    "EventData",
    "IncentiveOffered",
    "InvoiceAdjusted",
    "InvoiceBalanceChanged",
    "InvoiceIssued",
    "InvoiceLine",
    "InvoiceReopened",
    "InvoiceRiskAssessed",
    "InvoiceSettled",
    "InvoiceVoided",
    "InvoiceWrittenOff",
    "LateFeeAssessed",
    "PaymentFailed",
    "PaymentPlanRequested",
    "PaymentReceived",
    "PaymentRefunded",
    "PromiseToPayBroken",
    "PromiseToPayKept",
    "PromiseToPayMade",
    "ReminderCancelled",
    "ReminderScheduled",
    "ReminderSent",
    "StrictModel",
    "UnknownEventTypeError",
    "model_for",
]
