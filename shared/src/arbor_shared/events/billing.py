"""Customer, invoice, payment and credit events: the facts other systems report."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from arbor_shared import topics
from arbor_shared.events.base import (
    CalendarDate,
    EventData,
    Identifier,
    Instant,
    MinorUnits,
    SignedMinorUnits,
    StrictModel,
)
from arbor_shared.money import Currency

BillingCycle = Literal["monthly", "quarterly", "annual", "one_off"]
PaymentMethod = Literal["card", "bank_transfer", "direct_debit", "cheque", "other"]
Channel = Literal["email", "sms", "letter"]


class CustomerProfile(EventData):
    """Fields shared by customer creation and update."""

    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    region: str | None = Field(default=None, max_length=64)
    time_zone: str = Field(min_length=1, max_length=64, description="IANA zone")
    currency: Currency
    billing_cycle: BillingCycle = "monthly"
    payment_method: PaymentMethod = "bank_transfer"
    acquisition_channel: str | None = Field(default=None, max_length=64)
    language: str = Field(default="en", pattern=r"^[a-z]{2}$")
    preferred_channel: Channel = "email"
    started_on: CalendarDate


class CustomerCreated(CustomerProfile):
    event_type = "CustomerCreated"
    topic = topics.CUSTOMERS


class CustomerUpdated(CustomerProfile):
    event_type = "CustomerUpdated"
    topic = topics.CUSTOMERS


class InvoiceLine(StrictModel):
    """One line of an invoice; its amount is quantity times unit amount."""

    description: str = Field(min_length=1, max_length=500)
    quantity: int = Field(strict=True, ge=1)
    unit_amount_minor: MinorUnits
    amount_minor: MinorUnits

    @model_validator(mode="after")
    def _amount_is_product(self) -> InvoiceLine:
        if self.amount_minor != self.quantity * self.unit_amount_minor:
            raise ValueError("amount_minor must equal quantity times unit_amount_minor")
        return self


class InvoiceIssued(EventData):
    event_type = "InvoiceIssued"
    topic = topics.INVOICES

    invoice_id: Identifier
    number: str | None = Field(default=None, max_length=64)
    currency: Currency
    amount_minor: MinorUnits
    issue_date: CalendarDate
    due_date: CalendarDate
    issued_at: Instant
    lines: tuple[InvoiceLine, ...] = ()

    @model_validator(mode="after")
    def _dates_and_lines_agree(self) -> InvoiceIssued:
        if self.due_date < self.issue_date:
            raise ValueError("due_date must not be before issue_date")
        if self.lines and sum(line.amount_minor for line in self.lines) != (
            self.amount_minor
        ):
            raise ValueError("amount_minor must equal the sum of the lines")
        return self


class InvoiceAdjusted(EventData):
    event_type = "InvoiceAdjusted"
    topic = topics.INVOICES

    invoice_id: Identifier
    currency: Currency
    amount_delta_minor: SignedMinorUnits
    reason: str = Field(min_length=1, max_length=500)
    adjusted_at: Instant


class InvoiceVoided(EventData):
    event_type = "InvoiceVoided"
    topic = topics.INVOICES

    invoice_id: Identifier
    reason: str = Field(min_length=1, max_length=500)
    voided_at: Instant


class InvoiceWrittenOff(EventData):
    event_type = "InvoiceWrittenOff"
    topic = topics.INVOICES

    invoice_id: Identifier
    currency: Currency
    amount_minor: MinorUnits
    reason: str = Field(min_length=1, max_length=500)
    written_off_at: Instant


class Allocation(StrictModel):
    """The part of a payment the payer meant for one invoice."""

    invoice_id: Identifier
    amount_minor: MinorUnits = Field(gt=0)


class PaymentReceived(EventData):
    event_type = "PaymentReceived"
    topic = topics.PAYMENTS

    payment_id: Identifier
    provider_payment_id: Identifier | None = None
    currency: Currency
    amount_minor: MinorUnits = Field(gt=0)
    received_at: Instant
    method: PaymentMethod = "bank_transfer"
    allocations: tuple[Allocation, ...] = ()

    @model_validator(mode="after")
    def _allocations_fit(self) -> PaymentReceived:
        allocated = sum(a.amount_minor for a in self.allocations)
        if allocated > self.amount_minor:
            raise ValueError(
                f"allocations total {allocated} exceeds the payment {self.amount_minor}"
            )
        return self


class PaymentFailed(EventData):
    event_type = "PaymentFailed"
    topic = topics.PAYMENTS

    payment_id: Identifier
    invoice_id: Identifier | None = None
    currency: Currency
    amount_minor: MinorUnits
    reason: str = Field(min_length=1, max_length=200)
    failed_at: Instant


class PaymentRefunded(EventData):
    event_type = "PaymentRefunded"
    topic = topics.PAYMENTS

    refund_id: Identifier
    payment_id: Identifier
    currency: Currency
    amount_minor: MinorUnits = Field(gt=0)
    refunded_at: Instant


class CreditNoteFigures(EventData):
    """What a credit note's issue and its void both state."""

    credit_note_id: Identifier
    invoice_id: Identifier
    currency: Currency
    amount_minor: MinorUnits = Field(gt=0)
    reason: str | None = Field(default=None, max_length=500)


class CreditNoteIssued(CreditNoteFigures):
    event_type = "CreditNoteIssued"
    topic = topics.PAYMENTS

    issued_at: Instant


class CreditNoteVoided(CreditNoteFigures):
    """A credit note withdrawn: what it took off its invoice is owed again.

    It names the note's invoice, currency and total as issued, so that a consumer
    can show the reversal without having kept the note; the ledger refuses a void
    whose figures differ from the note's.
    """

    event_type = "CreditNoteVoided"
    topic = topics.PAYMENTS

    voided_at: Instant
