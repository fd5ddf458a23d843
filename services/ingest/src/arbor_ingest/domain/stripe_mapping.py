"""Which Stripe event becomes which canonical event, and why the others do not.

Every type gets an answer: a mapper, or a reason it is acknowledged without one.
Types Stripe adds later fall to the generic reason, never to an error, so that a
new Stripe release cannot make the endpoint fail and Stripe retry for days.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from arbor_ingest.domain import stripe_billing as billing
from arbor_ingest.domain import stripe_payments as payments
from arbor_ingest.domain.stripe import StripeEvent, StripePayloadError
from arbor_ingest.domain.stripe_billing import MapContext
from arbor_ingest.domain.stripe_objects import (
    Booking,
    Ignored,
    Outcome,
    StripeDefaults,
    ref,
)

Mapper = Callable[[StripeEvent, MapContext], Outcome]

MAPPERS: dict[str, Mapper] = {
    "customer.created": billing.customer,
    "customer.updated": billing.customer,
    "invoice.finalized": billing.invoice_finalized,
    "invoice.voided": billing.invoice_voided,
    "invoice.marked_uncollectible": billing.invoice_uncollectible,
    "credit_note.created": billing.credit_note_created,
    "credit_note.voided": billing.credit_note_voided,
    "invoice.paid": payments.invoice_paid,
    "payment_intent.succeeded": payments.payment_intent_succeeded,
    "charge.succeeded": payments.charge_succeeded,
    "charge.failed": payments.charge_failed,
    "invoice.payment_failed": payments.invoice_payment_failed,
    "charge.refunded": payments.charge_refunded,
    "refund.created": payments.refund,
    "refund.updated": payments.refund,
    "charge.refund.updated": payments.refund,
    "charge.dispute.created": payments.dispute_created,
    "charge.dispute.closed": payments.dispute_closed,
}

_DRAFT = "a draft or a notice: the invoice is booked once, at invoice.finalized"
REASONS: dict[str, str] = {
    "invoice.created": _DRAFT,
    "invoice.updated": _DRAFT,
    "invoice.sent": _DRAFT,
    "invoice.upcoming": _DRAFT,
    "invoice.deleted": "only drafts can be deleted, and drafts are not booked",
    "invoice.finalization_failed": "the invoice did not become owed",
    "invoice.payment_succeeded": "the same payment as invoice.paid, which is booked",
    "invoice.overdue": "ingest derives overdue from the due date itself",
    "invoice.will_be_due": "ingest derives due dates itself",
    "invoice.overpaid": "the overpayment is part of the booked payment amount",
    "invoice.payment.overpaid": "the overpayment is part of the booked payment",
    "payment_intent.payment_failed": "charge.failed reports the same attempt",
    "charge.captured": "payment_intent.succeeded books captured money",
    "charge.pending": "no money has moved yet",
    "charge.expired": "an uncaptured authorisation moves no money",
    "refund.failed": "a failed refund moves no money",
    "credit_note.updated": "only the memo and metadata of a credit note can change",
    "customer.deleted": "a deleted Stripe customer keeps its receivables history",
}


def lookup_keys(event: StripeEvent) -> list[str]:
    """Booking keys the mapping of ``event`` may consult (a superset)."""
    obj = event.object
    ids = {ref(obj, f) for f in ("id", "payment_intent", "latest_charge", "charge")}
    for item in _listed(obj.get("refunds")):
        ids.add(ref(item, "id"))
    if obj.get("object") == "invoice" and (invoice_id := ref(obj, "id")):
        ids.add(f"{invoice_id}.attempt{obj.get('attempt_count')}")
    prefixes = ("payment", "charge", "failure", "refund", "dispute")
    return sorted(f"{prefix}:{i}" for i in ids if i for prefix in prefixes)


def map_event(
    event: StripeEvent, bookings: Mapping[str, Booking], defaults: StripeDefaults
) -> Outcome:
    """The canonical events for ``event``, or why there are none.

    Raises StripePayloadError naming the problem when the object cannot be read.
    """
    mapper = MAPPERS.get(event.type)
    if mapper is None:
        return Ignored(REASONS.get(event.type) or _generic(event.type))
    try:
        return mapper(event, MapContext(bookings, defaults))
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or exc.title
        raise StripePayloadError(f"{where}: {first['msg']}") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise StripePayloadError(f"{event.type} object is malformed: {exc!r}") from None


def _listed(value: object) -> list[dict[str, Any]]:
    # A charge lists refunds as {"data": [...]}; a credit note as a bare list.
    items = value.get("data") if isinstance(value, dict) else value
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _generic(event_type: str) -> str:
    return (
        f"{event_type} has no canonical counterpart: ingest books customers, "
        "invoices, payments, refunds, credit notes and disputes"
    )
