"""Request and response models of the portal API.

Input and output models are separate (OWASP API3): a response may show fields a
request can never set. Every request model refuses unknown fields.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from arbor_portal.entrypoints.fields import (
    STRICT_INPUT,
    Email,
    Identifier,
    IsoDate,
    PositiveMinor,
    ProviderToken,
    Subject,
    Text200,
    Text1000,
    Text4000,
    TimeZone,
    text,
)

InvoiceStatus = Literal["open", "settled", "voided", "written_off"]


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


def _input_examples(*examples: dict[str, Any]) -> ConfigDict:
    return STRICT_INPUT | _examples(*examples)


class Problem(BaseModel):
    detail: str


class InvoiceLineRead(BaseModel):
    description: str
    quantity: int
    unit_amount_minor: int
    amount_minor: int


_INVOICE_SUMMARY_EXAMPLE: dict[str, Any] = {
    "invoice_id": "inv-2024-0001",
    "number": "2024-0001",
    "currency": "EUR",
    "amount_minor": 125000,
    "balance_minor": 25000,
    "status": "open",
    "issue_date": "2024-03-01",
    "due_date": "2024-03-31",
    "days_overdue": 12,
    "settled_date": None,
}


class InvoiceSummaryRead(BaseModel):
    model_config = _examples(_INVOICE_SUMMARY_EXAMPLE)

    invoice_id: str
    number: str | None
    currency: str
    amount_minor: int
    balance_minor: int | None = Field(
        description="From the receivables ledger; null until it has reported"
    )
    status: InvoiceStatus
    issue_date: date
    due_date: date
    days_overdue: int
    settled_date: date | None


class InvoicePage(BaseModel):
    model_config = _examples(
        {
            "items": [_INVOICE_SUMMARY_EXAMPLE],
            "next_cursor": "WyIyMDI0LTAzLTAxIiwgImludi0yMDI0LTAwMDEiXQ==",
        }
    )

    items: list[InvoiceSummaryRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class ReasonRead(BaseModel):
    step: str
    facts: dict[str, Any]


class DunningActionRead(BaseModel):
    model_config = _examples(
        {
            "kind": "reminder",
            "status": "sent",
            "step": "due_plus_7",
            "channel": "email",
            "planned_for": "2024-04-07T09:00:00Z",
            "occurred_at": "2024-04-07T09:00:02Z",
            "cancel_reason": None,
            "details": {"balance_minor": 25000, "currency": "EUR"},
            "reason": {"step": "due_plus_7", "facts": {"days_past_due": 7}},
        }
    )

    kind: Literal["reminder", "late_fee", "incentive"]
    status: Literal["planned", "sent", "cancelled", "assessed", "offered"]
    step: str | None
    channel: str | None
    planned_for: datetime | None
    occurred_at: datetime | None
    cancel_reason: str | None
    details: dict[str, Any]
    reason: ReasonRead | None = Field(description="Why the action was taken")


class AllocationRead(BaseModel):
    invoice_id: str
    amount_minor: int


_PAYMENT_EXAMPLE: dict[str, Any] = {
    "kind": "payment",
    "id": "pay-881",
    "currency": "EUR",
    "amount_minor": 100000,
    "occurred_at": "2024-03-20T10:15:00Z",
    "method": "bank_transfer",
    "payment_id": None,
    "invoice_id": None,
    "note": None,
    "allocations": [{"invoice_id": "inv-2024-0001", "amount_minor": 100000}],
}


class TransactionRead(BaseModel):
    model_config = _examples(_PAYMENT_EXAMPLE)

    kind: Literal["payment", "refund", "credit_note", "credit_note_void"] = Field(
        description="A credit_note_void withdraws the credit note of the same id: "
        "its allocation is what the note took off, owed again"
    )
    id: str
    currency: str
    amount_minor: int
    occurred_at: datetime
    method: str | None
    payment_id: str | None = Field(description="For a refund, the payment refunded")
    invoice_id: str | None = Field(
        description="For a credit note or its void, the invoice"
    )
    note: str | None
    allocations: list[AllocationRead]


class TransactionPage(BaseModel):
    model_config = _examples({"items": [_PAYMENT_EXAMPLE], "next_cursor": None})

    items: list[TransactionRead]
    next_cursor: str | None


class PaymentRead(TransactionRead):
    model_config = _examples(
        {
            **_PAYMENT_EXAMPLE,
            "refunds": [
                {
                    **_PAYMENT_EXAMPLE,
                    "kind": "refund",
                    "id": "ref-12",
                    "amount_minor": 5000,
                    "occurred_at": "2024-03-28T14:00:00Z",
                    "payment_id": "pay-881",
                    "allocations": [],
                }
            ],
        }
    )

    refunds: list[TransactionRead]


class DisputeCreate(BaseModel):
    model_config = _input_examples(
        {"amount_minor": 25000, "reason": "Line 2 was never delivered"}
    )

    amount_minor: PositiveMinor
    reason: Text1000


class DisputeRead(BaseModel):
    model_config = _examples(
        {
            "dispute_id": "dsp_5f0c",
            "invoice_id": "inv-2024-0001",
            "currency": "EUR",
            "amount_minor": 25000,
            "reason": "Line 2 was never delivered",
            "origin": "portal",
            "status": "open",
            "outcome": None,
            "opened_at": "2024-04-02T08:00:00Z",
            "resolved_at": None,
        }
    )

    dispute_id: str
    invoice_id: str
    currency: str
    amount_minor: int
    reason: str
    origin: str
    status: Literal["open", "resolved"]
    outcome: str | None
    opened_at: datetime
    resolved_at: datetime | None


class PromiseCreate(BaseModel):
    model_config = _input_examples(
        {"amount_minor": 25000, "promised_date": "2030-04-15"}
    )

    amount_minor: PositiveMinor
    promised_date: IsoDate = Field(description="After today in your time zone")


class PromiseRead(BaseModel):
    model_config = _examples(
        {
            "promise_id": "ptp_77ab",
            "invoice_id": "inv-2024-0001",
            "currency": "EUR",
            "amount_minor": 25000,
            "promised_date": "2030-04-15",
            "origin": "portal",
            "status": "open",
            "made_at": "2024-04-02T08:00:00Z",
            "closed_at": None,
        }
    )

    promise_id: str
    invoice_id: str
    currency: str
    amount_minor: int
    promised_date: date
    origin: str
    status: Literal["open", "kept", "broken"]
    made_at: datetime
    closed_at: datetime | None


class PaymentPlanCreate(BaseModel):
    model_config = _input_examples({"installments": 3, "note": "Three monthly parts"})

    installments: int = Field(strict=True, ge=2, le=24)
    note: Text1000 | None = None


class PaymentPlanRead(BaseModel):
    model_config = _examples(
        {
            "request_id": "ppr_19cd",
            "invoice_id": "inv-2024-0001",
            "installments": 3,
            "note": "Three monthly parts",
            "requested_at": "2024-04-02T08:00:00Z",
        }
    )

    request_id: str
    invoice_id: str
    installments: int
    note: str | None
    requested_at: datetime


class InvoiceRead(InvoiceSummaryRead):
    model_config = _examples(
        {
            **_INVOICE_SUMMARY_EXAMPLE,
            "issued_at": "2024-03-01T09:00:00Z",
            "paid_minor": 100000,
            "credited_minor": 0,
            "written_off_minor": 0,
            "lines": [
                {
                    "description": "Support plan, March",
                    "quantity": 1,
                    "unit_amount_minor": 125000,
                    "amount_minor": 125000,
                }
            ],
            "dunning": [],
            "payments": [],
            "disputes": [],
            "promises": [],
            "payment_plans": [],
        }
    )

    issued_at: datetime | None
    paid_minor: int
    credited_minor: int
    written_off_minor: int
    lines: list[InvoiceLineRead]
    dunning: list[DunningActionRead] = Field(
        description="Reminders, fees and incentives, taken or planned, with reasons"
    )
    payments: list[TransactionRead]
    disputes: list[DisputeRead]
    promises: list[PromiseRead]
    payment_plans: list[PaymentPlanRead]


class CurrencyBalanceRead(BaseModel):
    currency: str
    open_balance_minor: int = Field(description="From the receivables ledger")
    unapplied_cash_minor: int
    overdue_minor: int
    aging: dict[str, int] = Field(
        description="Open amount by days past due: current, 1_30, 31_60, 61_90, 90_plus"
    )


class OnTimeRead(BaseModel):
    invoices_due: int
    paid_on_time: int
    rate_percent: int | None


class AccountRead(BaseModel):
    model_config = _examples(
        {
            "as_of": "2024-04-12",
            "balances": [
                {
                    "currency": "EUR",
                    "open_balance_minor": 25000,
                    "unapplied_cash_minor": 0,
                    "overdue_minor": 25000,
                    "aging": {
                        "current": 0,
                        "1_30": 25000,
                        "31_60": 0,
                        "61_90": 0,
                        "90_plus": 0,
                    },
                }
            ],
            "on_time": {"invoices_due": 10, "paid_on_time": 9, "rate_percent": 90},
        }
    )

    as_of: date = Field(description="Today in the customer's time zone")
    balances: list[CurrencyBalanceRead]
    on_time: OnTimeRead


class PostalAddress(BaseModel):
    model_config = _input_examples(
        {
            "line1": "12 Rue de la Paix",
            "line2": None,
            "city": "Paris",
            "postal_code": "75002",
            "region": None,
            "country": "FR",
        }
    )

    line1: Text200
    line2: Text200 | None = None
    city: text(100)  # type: ignore[valid-type]
    postal_code: text(20)  # type: ignore[valid-type]
    region: text(100) | None = None  # type: ignore[valid-type]
    country: str = Field(strict=True, pattern=r"^[A-Z]{2}$")


class PaymentMethodToken(BaseModel):
    """A payment method as the provider's token: there is no field for a card number."""

    model_config = _input_examples(
        {
            "provider": "stripe",
            "token": "pm_1Nv2xYZ",
            "brand": "visa",
            "last4": "4242",
            "exp_month": 12,
            "exp_year": 2030,
        }
    )

    provider: Literal["stripe", "adyen", "gocardless"]
    token: ProviderToken
    brand: Literal["visa", "mastercard", "amex", "discover", "jcb", "other"]
    last4: str = Field(strict=True, pattern=r"^[0-9]{4}$")
    exp_month: int = Field(strict=True, ge=1, le=12)
    exp_year: int = Field(strict=True, ge=2000, le=2100)


class BillingDetailsUpdate(BaseModel):
    """Only what a customer may change; anything else is refused with 422."""

    model_config = _input_examples(
        {"email": "ap@example.com", "language": "fr", "time_zone": "Europe/Paris"}
    )

    email: Email | None = None
    postal_address: PostalAddress | None = None
    preferred_channel: Literal["email", "sms", "letter"] | None = None
    language: str | None = Field(default=None, strict=True, pattern=r"^[a-z]{2}$")
    time_zone: TimeZone | None = None
    payment_method: PaymentMethodToken | None = None


class BillingDetailsRead(BaseModel):
    model_config = _examples(
        {
            "name": "Acme SARL",
            "email": "ap@example.com",
            "postal_address": None,
            "preferred_channel": "email",
            "language": "fr",
            "time_zone": "Europe/Paris",
            "payment_method": None,
        }
    )

    name: str | None
    email: str | None
    postal_address: dict[str, Any] | None
    preferred_channel: str | None
    language: str | None
    time_zone: str | None
    payment_method: dict[str, Any] | None


class ThreadCreate(BaseModel):
    model_config = _input_examples(
        {
            "subject": "Question about March",
            "body": "Could you send a copy with our PO number?",
            "invoice_id": "inv-2024-0001",
        }
    )

    subject: Text200
    body: Text4000
    invoice_id: Identifier | None = None


class MessageCreate(BaseModel):
    model_config = _input_examples({"body": "Thank you, that answers it."})

    body: Text4000


_MESSAGE_EXAMPLE: dict[str, Any] = {
    "message_id": "msg_01",
    "author": "finance",
    "body": "Sent.",
    "created_at": "2024-04-02T08:00:00Z",
}


class MessageRead(BaseModel):
    model_config = _examples(_MESSAGE_EXAMPLE)

    message_id: str
    author: Literal["customer", "finance"]
    body: str
    created_at: datetime


_THREAD_EXAMPLE: dict[str, Any] = {
    "thread_id": "thr_9a",
    "invoice_id": "inv-2024-0001",
    "subject": "Question about March",
    "status": "awaiting_finance",
    "created_at": "2024-04-02T08:00:00Z",
    "updated_at": "2024-04-02T08:00:00Z",
}


class ThreadSummaryRead(BaseModel):
    model_config = _examples(_THREAD_EXAMPLE)

    thread_id: str
    invoice_id: str | None
    subject: str
    status: Literal["awaiting_finance", "awaiting_customer"]
    created_at: datetime
    updated_at: datetime


class ThreadRead(ThreadSummaryRead):
    model_config = _examples({**_THREAD_EXAMPLE, "messages": [_MESSAGE_EXAMPLE]})

    messages: list[MessageRead]


class OpsThreadRead(ThreadSummaryRead):
    model_config = _examples({**_THREAD_EXAMPLE, "customer_id": "cus-0042"})

    customer_id: str


class IdentityCreate(BaseModel):
    model_config = _input_examples(
        {"subject": "auth0|6512ab", "customer_id": "cus-0042"}
    )

    subject: Subject
    customer_id: Identifier


class IdentityRead(BaseModel):
    model_config = _examples({"subject": "auth0|6512ab", "customer_id": "cus-0042"})

    subject: str
    customer_id: str
