"""Stripe objects (Stripe's own published examples) mapped onto canonical events."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest

from arbor_ingest.domain.stripe import StripeEvent, StripePayloadError, parse_event
from arbor_ingest.domain.stripe_mapping import lookup_keys, map_event
from arbor_ingest.domain.stripe_objects import (
    Booking,
    Ignored,
    Mapped,
    StripeDefaults,
)
from arbor_shared.events import (
    CreditNoteIssued,
    CreditNoteVoided,
    CustomerCreated,
    DisputeOpened,
    DisputeResolved,
    EventData,
    InvoiceIssued,
    InvoiceVoided,
    InvoiceWrittenOff,
    PaymentFailed,
    PaymentReceived,
    PaymentRefunded,
)
from tests.ingest.fixtures.data import (
    CUSTOMER,
    dispute,
    envelope,
    object_for,
    stripe_event_types,
    stripe_object,
)

DEFAULTS = StripeDefaults(country="DE", time_zone="Europe/Berlin", currency="EUR")
PI = "pi_1PgafyB7WZ01zgkWSjxsAJo3"
CHARGE = "ch_1PgafuB7WZ01zgkWXYmPNZs8"
INVOICE = "in_1Pgc6tB7WZ01zgkWu9fdqL6I"


def event(event_type: str, obj: dict[str, Any], event_id: str = "evt_1") -> StripeEvent:
    return parse_event(orjson.dumps(envelope(event_type, obj, event_id=event_id)))


def only(outcome: object) -> EventData:
    assert isinstance(outcome, Mapped), outcome
    ((_, data),) = outcome.events
    return data


def book(outcome: object) -> dict[str, Booking]:
    assert isinstance(outcome, Mapped)
    return {b.key: b for b in outcome.bookings}


def test_customer_created_takes_defaults_where_stripe_is_silent() -> None:
    obj = stripe_object("customer", name="Jenny Rosen", currency=None)

    data = only(map_event(event("customer.created", obj), {}, DEFAULTS))

    assert isinstance(data, CustomerCreated)
    assert (data.customer_id, data.name) == (CUSTOMER, "Jenny Rosen")
    assert (data.country, data.time_zone, data.currency) == (
        "DE",
        "Europe/Berlin",
        "EUR",
    )
    assert data.started_on == date(2009, 2, 14)  # created 1234567890, Berlin


def test_customer_address_country_and_metadata_time_zone_win_over_defaults() -> None:
    obj = stripe_object("customer", metadata={"time_zone": "America/Chicago"})
    obj["address"]["country"] = "US"

    data = only(map_event(event("customer.created", obj), {}, DEFAULTS))

    assert isinstance(data, CustomerCreated)
    assert (data.country, data.time_zone, data.currency) == (
        "US",
        "America/Chicago",
        "USD",
    )
    assert data.name == CUSTOMER  # Stripe's example has no name


def test_invoice_finalized_becomes_invoice_issued_with_lines_and_upper_currency() -> (
    None
):
    obj = stripe_object("invoice", status="open", number="INV-0042")
    obj["status_transitions"]["finalized_at"] = 1721954054
    obj |= {"effective_at": None, "due_date": 1724546054}

    data = only(map_event(event("invoice.finalized", obj), {}, DEFAULTS))

    assert isinstance(data, InvoiceIssued)
    assert (data.invoice_id, data.customer_id, data.number) == (
        INVOICE,
        CUSTOMER,
        "INV-0042",
    )
    assert (data.currency, data.amount_minor) == ("USD", 1000)
    assert data.issued_at == datetime(2024, 7, 26, 0, 34, 14, tzinfo=UTC)
    assert (data.issue_date, data.due_date) == (date(2024, 7, 26), date(2024, 8, 25))
    assert [(line.quantity, line.amount_minor) for line in data.lines] == [(1, 1000)]


def test_invoice_lines_that_do_not_add_up_to_amount_due_are_left_out() -> None:
    obj = stripe_object("invoice", amount_due=1190)  # tax on top of the 1000 line

    data = only(map_event(event("invoice.finalized", obj), {}, DEFAULTS))

    assert isinstance(data, InvoiceIssued)
    assert (data.amount_minor, data.lines) == (1190, ())


def test_payment_intent_succeeded_books_the_payment_allocated_to_its_invoice() -> None:
    obj = stripe_object(
        "payment_intent",
        customer=CUSTOMER,
        amount_received=1099,
        latest_charge=CHARGE,
        invoice=INVOICE,
    )

    outcome = map_event(event("payment_intent.succeeded", obj), {}, DEFAULTS)

    data = only(outcome)
    assert isinstance(data, PaymentReceived)
    assert (data.payment_id, data.provider_payment_id) == (PI, PI)
    assert (data.amount_minor, data.currency, data.method) == (1099, "USD", "card")
    assert [(a.invoice_id, a.amount_minor) for a in data.allocations] == [
        (INVOICE, 1099)
    ]
    assert data.received_at == datetime.fromtimestamp(1721954100, UTC)
    assert set(book(outcome)) == {f"payment:{PI}", f"charge:{CHARGE}"}


def test_the_same_payment_reported_by_invoice_paid_later_is_not_booked_twice() -> None:
    intent = stripe_object("payment_intent", customer=CUSTOMER, amount_received=1000)
    bookings = book(map_event(event("payment_intent.succeeded", intent), {}, DEFAULTS))
    invoice = stripe_object("invoice", amount_paid=1000, payment_intent=PI)

    outcome = map_event(event("invoice.paid", invoice, "evt_2"), bookings, DEFAULTS)

    assert isinstance(outcome, Ignored)
    assert f"payment {PI} already booked" in outcome.reason


def test_invoice_paid_first_books_the_payment_allocated_to_the_invoice() -> None:
    invoice = stripe_object("invoice", amount_paid=1000, payment_intent=PI)

    data = only(map_event(event("invoice.paid", invoice), {}, DEFAULTS))

    assert isinstance(data, PaymentReceived)
    assert data.provider_payment_id == PI
    assert [(a.invoice_id, a.amount_minor) for a in data.allocations] == [
        (INVOICE, 1000)
    ]


def test_a_charge_of_a_payment_intent_is_left_to_the_intent() -> None:
    obj = stripe_object("charge", customer=CUSTOMER, payment_intent=PI)

    outcome = map_event(event("charge.succeeded", obj), {}, DEFAULTS)

    assert isinstance(outcome, Ignored)
    assert PI in outcome.reason


def test_a_legacy_charge_without_intent_is_booked_under_its_own_id() -> None:
    obj = stripe_object("charge", customer=CUSTOMER, amount_captured=100)

    data = only(map_event(event("charge.succeeded", obj), {}, DEFAULTS))

    assert isinstance(data, PaymentReceived)
    assert (data.provider_payment_id, data.amount_minor) == (CHARGE, 100)


def test_a_payment_without_a_stripe_customer_is_ignored_with_the_reason() -> None:
    obj = stripe_object("charge")  # Stripe's example charge has customer null

    outcome = map_event(event("charge.succeeded", obj), {}, DEFAULTS)

    assert isinstance(outcome, Ignored)
    assert "no Stripe customer" in outcome.reason


def test_one_failed_attempt_reported_twice_is_recorded_once() -> None:
    charge = stripe_object(
        "charge",
        customer=CUSTOMER,
        status="failed",
        invoice=INVOICE,
        failure_message="Your card was declined.",
    )
    first = map_event(event("charge.failed", charge), {}, DEFAULTS)
    invoice = stripe_object("invoice", charge=CHARGE, amount_remaining=1000)

    second = map_event(event("invoice.payment_failed", invoice), book(first), DEFAULTS)

    data = only(first)
    assert isinstance(data, PaymentFailed)
    assert (data.invoice_id, data.reason) == (INVOICE, "Your card was declined.")
    assert isinstance(second, Ignored)


def test_refund_of_a_booked_payment_names_that_payment() -> None:
    charge = stripe_object("charge", customer=CUSTOMER)
    bookings = book(map_event(event("charge.succeeded", charge), {}, DEFAULTS))
    refund = stripe_object("refund")  # refers to the charge by id only

    outcome = map_event(event("refund.created", refund, "evt_2"), bookings, DEFAULTS)

    data = only(outcome)
    assert isinstance(data, PaymentRefunded)
    assert (data.customer_id, data.payment_id, data.amount_minor) == (
        CUSTOMER,
        CHARGE,
        100,
    )
    again = map_event(
        event("charge.refunded", charge_with_refund(), "evt_3"),
        {**bookings, **book(outcome)},
        DEFAULTS,
    )
    assert isinstance(again, Ignored)


def charge_with_refund() -> dict[str, Any]:
    charge = stripe_object("charge", customer=CUSTOMER, refunded=True)
    charge["refunds"]["data"] = [stripe_object("refund")]
    return charge


def test_charge_refunded_books_listed_refunds_when_it_arrives_first() -> None:
    charge = stripe_object("charge", customer=CUSTOMER)
    bookings = book(map_event(event("charge.succeeded", charge), {}, DEFAULTS))

    outcome = map_event(
        event("charge.refunded", charge_with_refund(), "evt_2"), bookings, DEFAULTS
    )

    assert isinstance(outcome, Mapped)
    ((event_id, data),) = outcome.events
    assert isinstance(data, PaymentRefunded)
    assert event_id == "evt_2:re_1Pgc72B7WZ01zgkWqPvrRrPE"


def test_refund_of_a_payment_never_booked_is_ignored_with_the_reason() -> None:
    outcome = map_event(event("refund.created", stripe_object("refund")), {}, DEFAULTS)

    assert isinstance(outcome, Ignored)
    assert "never booked" in outcome.reason


def test_credit_notes_issued_and_voided_and_invoice_voids_map_to_their_events() -> None:
    note = only(
        map_event(
            event("credit_note.created", stripe_object("credit_note")), {}, DEFAULTS
        )
    )
    withdrawn = only(
        map_event(
            event("credit_note.voided", stripe_object("credit_note")), {}, DEFAULTS
        )
    )
    voided = only(
        map_event(event("invoice.voided", stripe_object("invoice")), {}, DEFAULTS)
    )
    lost = only(
        map_event(
            event("invoice.marked_uncollectible", stripe_object("invoice")),
            {},
            DEFAULTS,
        )
    )

    assert isinstance(note, CreditNoteIssued)
    assert (note.invoice_id, note.amount_minor) == ("in_1Pgc75B7WZ01zgkWYv4iMwt7", 1690)
    assert isinstance(withdrawn, CreditNoteVoided)
    assert (withdrawn.credit_note_id, withdrawn.invoice_id) == (
        note.credit_note_id,
        note.invoice_id,
    )
    assert (withdrawn.currency, withdrawn.amount_minor) == ("USD", 1690)
    assert isinstance(voided, InvoiceVoided)
    assert isinstance(lost, InvoiceWrittenOff)
    assert (lost.amount_minor, lost.currency) == (1000, "USD")


def test_dispute_on_an_invoice_payment_opens_and_closes_on_that_invoice() -> None:
    intent = stripe_object(
        "payment_intent", customer=CUSTOMER, amount_received=1000, invoice=INVOICE
    )
    bookings = book(map_event(event("payment_intent.succeeded", intent), {}, DEFAULTS))

    opened = map_event(
        event("charge.dispute.created", dispute(), "evt_2"), bookings, DEFAULTS
    )
    closed = map_event(
        event("charge.dispute.closed", dispute(status="lost"), "evt_3"),
        {**bookings, **book(opened)},
        DEFAULTS,
    )

    first, last = only(opened), only(closed)
    assert isinstance(first, DisputeOpened)
    assert (first.invoice_id, first.origin, first.amount_minor) == (
        INVOICE,
        "provider",
        1000,
    )
    assert isinstance(last, DisputeResolved)
    assert (last.invoice_id, last.outcome) == (INVOICE, "lost")


def test_lookup_covers_the_payment_a_refund_or_dispute_refers_to() -> None:
    keys = lookup_keys(event("refund.created", stripe_object("refund")))
    dispute_keys = lookup_keys(event("charge.dispute.closed", dispute()))

    assert {f"charge:{CHARGE}", "refund:re_1Pgc72B7WZ01zgkWqPvrRrPE"} <= set(keys)
    assert {f"payment:{PI}", "dispute:dp_1PgaxNB7WZ01zgkW0000"} <= set(dispute_keys)


def test_unknown_event_type_is_ignored_with_a_reason() -> None:
    outcome = map_event(event("issuing_card.created", {"id": "ic_1"}), {}, DEFAULTS)

    assert isinstance(outcome, Ignored)
    assert "no canonical counterpart" in outcome.reason


@pytest.mark.parametrize("event_type", stripe_event_types())
def test_every_listed_stripe_type_is_mapped_ignored_or_refused_by_name(
    event_type: str,
) -> None:
    stripe_event = event(event_type, object_for(event_type))
    assert all(":" in key for key in lookup_keys(stripe_event))
    try:
        outcome = map_event(stripe_event, {}, DEFAULTS)
    except StripePayloadError as exc:
        refusal = str(exc)
        assert refusal  # a refusal must say what is wrong
        return
    if isinstance(outcome, Ignored):
        assert outcome.reason
    else:
        assert outcome.events


def test_malformed_object_of_a_mapped_type_is_refused_naming_the_field() -> None:
    obj = stripe_object("invoice", currency="zzz")

    with pytest.raises(StripePayloadError, match="currency 'zzz' is not"):
        map_event(event("invoice.finalized", obj), {}, DEFAULTS)
