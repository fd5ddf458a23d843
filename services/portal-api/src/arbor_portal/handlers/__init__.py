"""Portal reactions: events into the read model, customer actions into events."""

from __future__ import annotations

from arbor_portal.handlers import billing, collections
from arbor_shared.events import (
    CreditNoteIssued,
    CreditNoteVoided,
    CustomerBalanceChanged,
    CustomerCreated,
    CustomerUpdated,
    DisputeOpened,
    DisputeResolved,
    IncentiveOffered,
    InvoiceBalanceChanged,
    InvoiceIssued,
    InvoiceReopened,
    InvoiceSettled,
    InvoiceVoided,
    InvoiceWrittenOff,
    LateFeeAssessed,
    PaymentPlanRequested,
    PaymentReceived,
    PaymentRefunded,
    PromiseToPayBroken,
    PromiseToPayKept,
    PromiseToPayMade,
    ReminderCancelled,
    ReminderScheduled,
    ReminderSent,
)
from arbor_shared.kafka.consumer import Handler

HANDLERS: dict[str, Handler] = {
    CustomerCreated.event_type: billing.record_customer,
    CustomerUpdated.event_type: billing.record_customer,
    InvoiceIssued.event_type: billing.record_invoice,
    InvoiceVoided.event_type: billing.record_void,
    InvoiceWrittenOff.event_type: billing.record_write_off,
    PaymentReceived.event_type: billing.record_payment,
    PaymentRefunded.event_type: billing.record_refund,
    CreditNoteIssued.event_type: billing.record_credit_note,
    CreditNoteVoided.event_type: billing.record_credit_note_void,
    InvoiceBalanceChanged.event_type: billing.record_invoice_balance,
    InvoiceSettled.event_type: billing.record_settlement,
    InvoiceReopened.event_type: billing.record_reopening,
    CustomerBalanceChanged.event_type: billing.record_customer_balance,
    DisputeOpened.event_type: collections.record_dispute,
    DisputeResolved.event_type: collections.record_dispute_resolution,
    PromiseToPayMade.event_type: collections.record_promise,
    PromiseToPayKept.event_type: collections.record_promise_kept,
    PromiseToPayBroken.event_type: collections.record_promise_broken,
    PaymentPlanRequested.event_type: collections.record_plan_request,
    ReminderScheduled.event_type: collections.record_reminder_planned,
    ReminderSent.event_type: collections.record_reminder_sent,
    ReminderCancelled.event_type: collections.record_reminder_cancelled,
    LateFeeAssessed.event_type: collections.record_late_fee,
    IncentiveOffered.event_type: collections.record_incentive,
}
"""Read-model reactions keyed by event type (BillingDetailsChanged is the portal's own
and already applied when published, so its echo is ignored)."""
