"""The business identities an event carries, and who may name which invoice.

Event ids make a resubmission harmless; business identities make the same fact
harmless when a publisher sends it again under a new event id (a provider's payment
reported by a webhook and by an export).
"""

from __future__ import annotations

from arbor_ingest.domain.accounts import funds_key
from arbor_ingest.domain.errors import EventRejectedError
from arbor_shared.events import (
    CreditNoteIssued,
    CreditNoteVoided,
    CustomerCreated,
    EventData,
    InvoiceAdjusted,
    InvoiceIssued,
    InvoiceVoided,
    InvoiceWrittenOff,
    PaymentReceived,
    PaymentRefunded,
)

BusinessKey = tuple[str, str]


def business_keys(data: EventData) -> list[tuple[BusinessKey, str]]:
    """Each (kind, key) the event books, with the field that carries it."""
    match data:
        case CustomerCreated():
            return [(("customer", data.customer_id), "customer_id")]
        case InvoiceIssued():
            return [(("invoice", data.invoice_id), "invoice_id")]
        case InvoiceVoided():
            return [(("void", data.invoice_id), "invoice_id")]
        case InvoiceWrittenOff():
            # Write-offs and adjustments carry no id of their own: the same invoice
            # changed at the same instant is the same fact.
            moment = data.written_off_at.isoformat()
            return [(("write_off", f"{data.invoice_id}@{moment}"), "written_off_at")]
        case InvoiceAdjusted():
            moment = data.adjusted_at.isoformat()
            return [(("adjustment", f"{data.invoice_id}@{moment}"), "adjusted_at")]
        case PaymentReceived():
            keys = [(("payment", data.payment_id), "payment_id")]
            if data.provider_payment_id is not None:
                provider = ("provider_payment", data.provider_payment_id)
                keys.append((provider, "provider_payment_id"))
            return keys
        case CreditNoteIssued():
            return [(("credit_note", data.credit_note_id), "credit_note_id")]
        case CreditNoteVoided():
            return [(("credit_note_void", data.credit_note_id), "credit_note_id")]
        case PaymentRefunded():
            return [(("refund", data.refund_id), "refund_id")]
    return []


def invoices_issued(data: EventData) -> list[str]:
    return [data.invoice_id] if isinstance(data, InvoiceIssued) else []


def invoices_named(data: EventData) -> list[tuple[str, str]]:
    """Each invoice id the event names, with the field that names it."""
    match data:
        case PaymentReceived():
            return [
                (a.invoice_id, f"allocations[{n}].invoice_id")
                for n, a in enumerate(data.allocations)
            ]
        case (
            InvoiceIssued()
            | InvoiceAdjusted()
            | InvoiceVoided()
            | InvoiceWrittenOff()
            | CreditNoteIssued()
            | CreditNoteVoided()
        ):
            return [(data.invoice_id, "invoice_id")]
    return []


def funds_named(data: EventData) -> list[str]:
    """The key of each payment or credit note the event books or refunds."""
    match data:
        case PaymentReceived() | PaymentRefunded():
            return [funds_key("payment", data.payment_id)]
        case CreditNoteIssued() | CreditNoteVoided():
            return [funds_key("credit", data.credit_note_id)]
    return []


def check_owners(data: EventData, owners: dict[str, str]) -> None:
    """Refuse an event naming another customer's invoice, without saying whose."""
    for invoice_id, field in invoices_named(data):
        owner = owners.get(invoice_id)
        if owner is not None and owner != data.customer_id:
            raise EventRejectedError(
                field, f"invoice {invoice_id} belongs to another customer"
            )
