"""Stripe customers, invoices and credit notes as canonical events."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from arbor_ingest.domain.stripe import StripeEvent, currency_of, to_minor
from arbor_ingest.domain.stripe_objects import (
    Booking,
    Ignored,
    Mapped,
    Outcome,
    StripeDefaults,
    StripeObject,
    local_date,
    ref,
    required_ref,
    timestamp,
    valid_zone,
)
from arbor_shared.events import (
    CreditNoteIssued,
    CreditNoteVoided,
    CustomerCreated,
    CustomerUpdated,
    InvoiceIssued,
    InvoiceLine,
    InvoiceVoided,
    InvoiceWrittenOff,
)

_COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class MapContext:
    """What a mapper may consult besides the event: earlier bookings, defaults."""

    bookings: Mapping[str, Booking]
    defaults: StripeDefaults


def customer(event: StripeEvent, ctx: MapContext) -> Outcome:
    """customer.created/updated: the profile, defaults where Stripe is silent.

    Stripe has no time zone: ``metadata.time_zone`` is used when it names an IANA
    zone, else the configured default; the country is the address's, else the
    default; the currency is the customer's, else the default.
    """
    obj = event.object
    model = CustomerCreated if event.type == "customer.created" else CustomerUpdated
    time_zone = valid_zone(_metadata(obj).get("time_zone")) or ctx.defaults.time_zone
    data = model(
        customer_id=required_ref(obj, "id"),
        name=_text(obj.get("name"), 200) or obj["id"],
        email=_text(obj.get("email"), 254),
        country=_country(obj) or ctx.defaults.country,
        region=_text((obj.get("address") or {}).get("state"), 64),
        time_zone=time_zone,
        currency=currency_of(obj.get("currency") or ctx.defaults.currency.lower()),
        language=_language(obj.get("preferred_locales")),
        started_on=local_date(timestamp(obj, "created", event), time_zone),
    )
    return Mapped(((event.id, data),))


def invoice_finalized(event: StripeEvent, ctx: MapContext) -> Outcome:
    """invoice.finalized: the invoice becomes owed; a draft is not yet an invoice.

    Issued at ``effective_at`` (finalization, unless backdated); due on
    ``due_date`` (send_invoice) or on the issue day (charge_automatically). Lines
    are kept only when they add up to ``amount_due``: taxes, discounts and balance
    credits otherwise make them disagree.
    """
    obj = event.object
    currency = currency_of(obj.get("currency"))
    amount = to_minor(obj.get("amount_due"), currency)
    issued_at = _issued_at(obj, event)
    issue_date = local_date(issued_at, ctx.defaults.time_zone)
    due_date = issue_date
    if obj.get("due_date") is not None:
        due_date = local_date(timestamp(obj, "due_date", event), ctx.defaults.time_zone)
    data = InvoiceIssued(
        customer_id=required_ref(obj, "customer"),
        invoice_id=required_ref(obj, "id"),
        number=_text(obj.get("number"), 64),
        currency=currency,
        amount_minor=amount,
        issue_date=issue_date,
        due_date=due_date,
        issued_at=issued_at,
        lines=_lines(obj, currency, amount),
    )
    return Mapped(((event.id, data),))


def _issued_at(obj: StripeObject, event: StripeEvent) -> datetime:
    if isinstance(obj.get("effective_at"), int):
        return timestamp(obj, "effective_at", event)
    return timestamp(obj.get("status_transitions") or {}, "finalized_at", event)


def invoice_voided(event: StripeEvent, ctx: MapContext) -> Outcome:
    obj = event.object
    data = InvoiceVoided(
        customer_id=required_ref(obj, "customer"),
        invoice_id=required_ref(obj, "id"),
        reason="voided in Stripe",
        voided_at=timestamp(obj.get("status_transitions") or {}, "voided_at", event),
    )
    return Mapped(((event.id, data),))


def invoice_uncollectible(event: StripeEvent, ctx: MapContext) -> Outcome:
    """invoice.marked_uncollectible: what is still owed is written off."""
    obj = event.object
    currency = currency_of(obj.get("currency"))
    transitions = obj.get("status_transitions") or {}
    data = InvoiceWrittenOff(
        customer_id=required_ref(obj, "customer"),
        invoice_id=required_ref(obj, "id"),
        currency=currency,
        amount_minor=to_minor(obj.get("amount_remaining"), currency),
        reason="marked uncollectible in Stripe",
        written_off_at=timestamp(transitions, "marked_uncollectible_at", event),
    )
    return Mapped(((event.id, data),))


def credit_note_created(event: StripeEvent, ctx: MapContext) -> Outcome:
    """credit_note.created: the note's total reduces what the invoice owes."""
    obj = event.object
    note = _credit_note(obj)
    if note is None:
        return Ignored("the credit note credits nothing (total 0)")
    data = CreditNoteIssued(
        **note,
        reason=_text(obj.get("reason")) or _text(obj.get("memo")),
        issued_at=timestamp(obj, "effective_at", event),
    )
    return Mapped(((event.id, data),))


def credit_note_voided(event: StripeEvent, ctx: MapContext) -> Outcome:
    """credit_note.voided: the invoice owes again what the note took off."""
    obj = event.object
    note = _credit_note(obj)
    if note is None:
        return Ignored("the voided credit note credited nothing (total 0)")
    data = CreditNoteVoided(
        **note, reason="voided in Stripe", voided_at=timestamp(obj, "voided_at", event)
    )
    return Mapped(((event.id, data),))


def _credit_note(obj: StripeObject) -> dict[str, Any] | None:
    """The fields a note's issue and void share; None when its total is zero."""
    currency = currency_of(obj.get("currency"))
    amount = to_minor(obj.get("total", obj.get("amount")), currency)
    if amount == 0:
        return None
    return {
        "customer_id": required_ref(obj, "customer"),
        "credit_note_id": required_ref(obj, "id"),
        "invoice_id": required_ref(obj, "invoice"),
        "currency": currency,
        "amount_minor": amount,
    }


def _lines(obj: StripeObject, currency: str, amount: int) -> tuple[InvoiceLine, ...]:
    raw = (obj.get("lines") or {}).get("data") or []
    if (obj.get("lines") or {}).get("has_more"):
        return ()
    lines = [line for item in raw if (line := _line(item, currency)) is not None]
    if len(lines) != len(raw) or sum(line.amount_minor for line in lines) != amount:
        return ()
    return tuple(lines)


def _line(item: Any, currency: str) -> InvoiceLine | None:
    if not isinstance(item, dict):
        return None
    amount, quantity = item.get("amount"), item.get("quantity") or 1
    if not isinstance(amount, int) or amount < 0 or not isinstance(quantity, int):
        return None
    minor = to_minor(amount, currency)
    if quantity < 1 or minor % quantity:
        return None
    return InvoiceLine(
        description=_text(item.get("description")) or "invoice line",
        quantity=quantity,
        unit_amount_minor=minor // quantity,
        amount_minor=minor,
    )


def _metadata(obj: StripeObject) -> dict[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _country(obj: StripeObject) -> str | None:
    country = (obj.get("address") or {}).get("country")
    return country if isinstance(country, str) and _COUNTRY.match(country) else None


def _language(locales: object) -> str:
    if isinstance(locales, list) and locales and isinstance(locales[0], str):
        language = locales[0][:2].lower()
        if re.fullmatch(r"[a-z]{2}", language):
            return language
    return "en"


def _text(value: object, limit: int = 500) -> str | None:
    # Stripe's free text can be longer than the canonical fields allow; a truncated
    # description is better than a refused invoice.
    return value.strip()[:limit] or None if isinstance(value, str) else None


__all__ = ["Booking", "MapContext", "ref"]
