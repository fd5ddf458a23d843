"""Stripe payments, failures, refunds and disputes as canonical events.

One payment reaches us as several Stripe events. The PaymentIntent is the
authoritative record of money received: its id is the provider payment id, and a
charge is booked on its own only when it has no PaymentIntent (the legacy Charges
API). ``invoice.paid`` books the same payment, allocated, when it arrives first. Each
payment is remembered under ``payment:<id>``; whichever of the events comes second
is acknowledged as already booked, so the cash is counted once.
"""

from __future__ import annotations

from arbor_ingest.domain.stripe import StripeEvent, currency_of, to_minor
from arbor_ingest.domain.stripe_billing import MapContext
from arbor_ingest.domain.stripe_objects import (
    Booking,
    Ignored,
    Mapped,
    Outcome,
    StripeObject,
    payment_method,
    ref,
    required_ref,
    timestamp,
)
from arbor_shared.events import (
    Allocation,
    DisputeOpened,
    DisputeResolved,
    PaymentFailed,
    PaymentReceived,
    PaymentRefunded,
)

_NO_CUSTOMER = "no Stripe customer: receivables are tracked per customer"


def payment_intent_succeeded(event: StripeEvent, ctx: MapContext) -> Outcome:
    obj = event.object
    methods = obj.get("payment_method_types") or [None]
    amount = obj.get("amount_received") or obj.get("amount")
    return _book_payment(
        event,
        ctx,
        payment_id=required_ref(obj, "id"),
        charge_id=ref(obj, "latest_charge"),
        invoice_id=ref(obj, "invoice"),
        amount=amount,
        method=payment_method(methods[0]),
    )


def charge_succeeded(event: StripeEvent, ctx: MapContext) -> Outcome:
    obj = event.object
    intent = ref(obj, "payment_intent")
    if intent is not None:
        return Ignored(f"payment_intent.succeeded books {intent}, the charge's intent")
    details = obj.get("payment_method_details") or {}
    charge_id = required_ref(obj, "id")
    return _book_payment(
        event,
        ctx,
        payment_id=charge_id,
        charge_id=charge_id,
        invoice_id=ref(obj, "invoice"),
        amount=obj.get("amount_captured") or obj.get("amount"),
        method=payment_method(details.get("type")),
    )


def invoice_paid(event: StripeEvent, ctx: MapContext) -> Outcome:
    obj = event.object
    if obj.get("paid_out_of_band"):
        return Ignored("paid outside Stripe: the system that took the money reports it")
    payment_id = ref(obj, "payment_intent") or ref(obj, "charge")
    if payment_id is None:
        # Known limit: API versions that no longer name the payment on the invoice
        # book nothing here. Removed by mapping invoice_payment.paid, which names
        # both the invoice and the PaymentIntent.
        return Ignored("the invoice names no PaymentIntent or charge to book")
    if not obj.get("amount_paid"):
        return Ignored("nothing paid in money (zero total or customer balance)")
    return _book_payment(
        event,
        ctx,
        payment_id=payment_id,
        charge_id=ref(obj, "charge"),
        invoice_id=required_ref(obj, "id"),
        amount=obj.get("amount_paid"),
        method="card",
    )


def _book_payment(
    event: StripeEvent,
    ctx: MapContext,
    *,
    payment_id: str,
    charge_id: str | None,
    invoice_id: str | None,
    amount: object,
    method: str,
) -> Outcome:
    keys = [f"payment:{payment_id}", *([f"charge:{charge_id}"] if charge_id else [])]
    earlier = next((ctx.bookings[k] for k in keys if k in ctx.bookings), None)
    if earlier is not None:
        return Ignored(f"payment {payment_id} already booked from {earlier.key}")
    customer_id = ref(event.object, "customer")
    if customer_id is None:
        return Ignored(_NO_CUSTOMER)
    currency = currency_of(event.object.get("currency"))
    minor = to_minor(amount, currency)
    data = PaymentReceived(
        customer_id=customer_id,
        payment_id=payment_id,
        provider_payment_id=payment_id,
        currency=currency,
        amount_minor=minor,
        received_at=event.created,
        method=method,  # type: ignore[arg-type]
        allocations=(
            (Allocation(invoice_id=invoice_id, amount_minor=minor),)
            if invoice_id
            else ()
        ),
    )
    bookings = tuple(
        Booking(key, customer_id, event.id, invoice_id, payment_id) for key in keys
    )
    return Mapped(((event.id, data),), bookings)


def charge_failed(event: StripeEvent, ctx: MapContext) -> Outcome:
    obj = event.object
    return _fail(
        event,
        ctx,
        attempt=required_ref(obj, "id"),
        payment_id=ref(obj, "payment_intent") or required_ref(obj, "id"),
        invoice_id=ref(obj, "invoice"),
        amount=obj.get("amount"),
        reason=obj.get("failure_message") or obj.get("failure_code"),
    )


def invoice_payment_failed(event: StripeEvent, ctx: MapContext) -> Outcome:
    obj = event.object
    invoice_id = required_ref(obj, "id")
    attempt = ref(obj, "charge") or f"{invoice_id}.attempt{obj.get('attempt_count')}"
    return _fail(
        event,
        ctx,
        attempt=attempt,
        payment_id=ref(obj, "payment_intent") or attempt,
        invoice_id=invoice_id,
        amount=obj.get("amount_remaining"),
        reason=None,
    )


def _fail(
    event: StripeEvent,
    ctx: MapContext,
    *,
    attempt: str,
    payment_id: str,
    invoice_id: str | None,
    amount: object,
    reason: object,
) -> Outcome:
    # charge.failed and invoice.payment_failed report the same failed attempt.
    key = f"failure:{attempt}"
    if key in ctx.bookings:
        return Ignored(f"failed attempt {attempt} already recorded")
    customer_id = ref(event.object, "customer")
    if customer_id is None:
        return Ignored(_NO_CUSTOMER)
    currency = currency_of(event.object.get("currency"))
    data = PaymentFailed(
        customer_id=customer_id,
        payment_id=payment_id,
        invoice_id=invoice_id,
        currency=currency,
        amount_minor=to_minor(amount, currency),
        reason=str(reason)[:200] if reason else "payment attempt failed at Stripe",
        failed_at=event.created,
    )
    booking = Booking(key, customer_id, event.id, invoice_id, payment_id)
    return Mapped(((event.id, data),), (booking,))


def refund(event: StripeEvent, ctx: MapContext) -> Outcome:
    """refund.created/updated, charge.refund.updated: a succeeded refund, once."""
    return _refund(event, event.object, ctx, event.id)


def charge_refunded(event: StripeEvent, ctx: MapContext) -> Outcome:
    """charge.refunded: each listed refund not booked yet (refund.* may be first)."""
    refunds = event.object.get("refunds")
    listed = refunds.get("data") or [] if isinstance(refunds, dict) else []
    charge = {"charge": event.object.get("id")}
    outcomes = [
        _refund(event, charge | item, ctx, f"{event.id}:{item.get('id')}")
        for item in listed
        if isinstance(item, dict)
    ]
    mapped = [o for o in outcomes if isinstance(o, Mapped)]
    if not mapped:
        return Ignored("no refund listed on the charge that is not booked already")
    return Mapped(
        tuple(e for o in mapped for e in o.events),
        tuple(b for o in mapped for b in o.bookings),
    )


def _refund(
    event: StripeEvent, obj: StripeObject, ctx: MapContext, event_id: str
) -> Outcome:
    refund_id = required_ref(obj, "id")
    if obj.get("status") != "succeeded":
        return Ignored(f"refund {refund_id} is {obj.get('status')}, not succeeded")
    if f"refund:{refund_id}" in ctx.bookings:
        return Ignored(f"refund {refund_id} already booked")
    payment = _payment_booking(obj, ctx)
    if payment is None:
        return Ignored(f"refund {refund_id} is for a payment ingest never booked")
    currency = currency_of(obj.get("currency"))
    data = PaymentRefunded(
        customer_id=payment.customer_id,
        refund_id=refund_id,
        payment_id=payment.payment_id or payment.key.partition(":")[2],
        currency=currency,
        amount_minor=to_minor(obj.get("amount"), currency),
        refunded_at=timestamp(obj, "created", event),
    )
    booking = Booking(
        f"refund:{refund_id}", payment.customer_id, event.id, payment.invoice_id
    )
    return Mapped(((event_id, data),), (booking,))


def dispute_created(event: StripeEvent, ctx: MapContext) -> Outcome:
    obj = event.object
    dispute_id = required_ref(obj, "id")
    payment = _payment_booking(obj, ctx)
    if payment is None or payment.invoice_id is None:
        return Ignored(f"dispute {dispute_id} is on no booked invoice payment")
    currency = currency_of(obj.get("currency"))
    data = DisputeOpened(
        customer_id=payment.customer_id,
        dispute_id=dispute_id,
        invoice_id=payment.invoice_id,
        currency=currency,
        amount_minor=to_minor(obj.get("amount"), currency),
        reason=str(obj.get("reason") or "disputed at Stripe")[:1000],
        origin="provider",
        opened_at=timestamp(obj, "created", event),
    )
    booking = Booking(
        f"dispute:{dispute_id}", payment.customer_id, event.id, payment.invoice_id
    )
    return Mapped(((event.id, data),), (booking,))


_OUTCOMES = {"won": "won", "lost": "lost", "warning_closed": "withdrawn"}


def dispute_closed(event: StripeEvent, ctx: MapContext) -> Outcome:
    """charge.dispute.closed: ``won`` means the business kept the money."""
    obj = event.object
    dispute_id = required_ref(obj, "id")
    opened = ctx.bookings.get(f"dispute:{dispute_id}")
    outcome = _OUTCOMES.get(str(obj.get("status")))
    if opened is None or opened.invoice_id is None:
        return Ignored(f"dispute {dispute_id} was never opened here")
    if outcome is None:
        return Ignored(f"dispute status {obj.get('status')!r} is not a final outcome")
    data = DisputeResolved(
        customer_id=opened.customer_id,
        dispute_id=dispute_id,
        invoice_id=opened.invoice_id,
        outcome=outcome,  # type: ignore[arg-type]
        resolved_at=event.created,
    )
    return Mapped(((event.id, data),))


def payment_keys(obj: StripeObject) -> list[str]:
    """Booking keys under which the payment ``obj`` refers to may be remembered."""
    keys = []
    if intent := ref(obj, "payment_intent"):
        keys.append(f"payment:{intent}")
    if charge := ref(obj, "charge"):
        keys += [f"charge:{charge}", f"payment:{charge}"]
    return keys


def _payment_booking(obj: StripeObject, ctx: MapContext) -> Booking | None:
    found = (ctx.bookings.get(key) for key in payment_keys(obj))
    return next((b for b in found if b is not None), None)
