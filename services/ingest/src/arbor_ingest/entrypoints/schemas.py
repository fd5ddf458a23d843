"""Request and response models of the ingest API, with their OpenAPI examples."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

ACCEPTED_TYPES = frozenset(
    {
        "CustomerCreated",
        "CustomerUpdated",
        "BillingDetailsChanged",
        "InvoiceIssued",
        "InvoiceAdjusted",
        "InvoiceVoided",
        "InvoiceWrittenOff",
        "PaymentReceived",
        "PaymentFailed",
        "PaymentRefunded",
        "CreditNoteIssued",
        "CreditNoteVoided",
        "DisputeOpened",
        "DisputeResolved",
        "PromiseToPayMade",
        "PaymentPlanRequested",
    }
)
"""Facts other systems report. The ledger's own facts (balances, settlement) and
what segmentation and dunning decide are derived here or there, never submitted."""

INVOICE_EXAMPLE: dict[str, Any] = {
    "id": "4b1f7a62-5c0e-4f43-9a59-0c2f9d1e6a11",
    "type": "InvoiceIssued",
    "data": {
        "customer_id": "cus-0042",
        "invoice_id": "inv-2024-0001",
        "currency": "EUR",
        "amount_minor": 125000,
        "issue_date": "2024-03-01",
        "due_date": "2024-03-31",
        "issued_at": "2024-03-01T09:00:00+01:00",
    },
}
PAYMENT_EXAMPLE: dict[str, Any] = {
    "id": "9d0c1e55-2b7f-4a0e-8f6d-3c1b2a4e5f60",
    "type": "PaymentReceived",
    "data": {
        "customer_id": "cus-0042",
        "payment_id": "pay-2024-0107",
        "provider_payment_id": "ch_3OqX2b2eZvKYlo2C1",
        "currency": "EUR",
        "amount_minor": 150000,
        "received_at": "2024-03-28T14:12:00+01:00",
        "method": "bank_transfer",
        "allocations": [{"invoice_id": "inv-2024-0001", "amount_minor": 125000}],
    },
}


class EventCreate(BaseModel):
    """A canonical event submitted by an internal system."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [INVOICE_EXAMPLE, PAYMENT_EXAMPLE]},
    )

    id: str = Field(
        default_factory=lambda: str(uuid.uuid4()),
        min_length=1,
        max_length=128,
        pattern=r"^[\w.:\-]+$",
        description="The publisher's event id; resubmitting it is answered as a "
        "duplicate. Without one, only an Idempotency-Key makes retries safe.",
    )
    type: str = Field(
        description="The event type",
        json_schema_extra={"enum": [*sorted(ACCEPTED_TYPES)]},
    )
    data: dict[str, JsonValue] = Field(
        description="The event's data, as its model in the event catalogue; amounts "
        "are integers in the currency's ISO 4217 minor units (floats, even 256.0, "
        "and strings are refused)"
    )


class EventRead(BaseModel):
    """What became of a submitted event."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"id": INVOICE_EXAMPLE["id"], "status": "accepted"}]
        }
    )

    id: str
    status: Literal["accepted", "duplicate"]


class ProblemRead(BaseModel):
    field: str = Field(
        description="Dotted path of the bad field, e.g. data.amount_minor"
    )
    reason: str


class BatchCreate(BaseModel):
    """Up to the configured maximum (5,000 by default) canonical events."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"events": [INVOICE_EXAMPLE, PAYMENT_EXAMPLE]}]
        },
    )

    events: list[EventCreate] = Field(min_length=1, max_length=5000)


class ItemResult(BaseModel):
    index: int = Field(description="Position of the event in the request")
    id: str | None = Field(description="The event id, when it could be read")
    status: Literal["accepted", "duplicate", "rejected"]
    errors: list[ProblemRead] = Field(default_factory=list)


class BatchRead(BaseModel):
    """One result per submitted event, in order; rejected ones block nothing."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "accepted": 1,
                    "duplicate": 0,
                    "rejected": 1,
                    "results": [
                        {
                            "index": 0,
                            "id": INVOICE_EXAMPLE["id"],
                            "status": "accepted",
                            "errors": [],
                        },
                        {
                            "index": 1,
                            "id": PAYMENT_EXAMPLE["id"],
                            "status": "rejected",
                            "errors": [
                                {
                                    "field": "events[1].data.amount_minor",
                                    "reason": "Input should be a valid integer",
                                }
                            ],
                        },
                    ],
                }
            ]
        }
    )

    accepted: int
    duplicate: int
    rejected: int
    results: list[ItemResult]


class ErrorRead(BaseModel):
    """Why a request was refused; ``detail`` names every bad field."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": [
                        {
                            "loc": ["body", "data", "due_date"],
                            "field": "data.due_date",
                            "msg": "due_date must not be before issue_date",
                            "type": "value_error",
                        }
                    ]
                }
            ]
        }
    )

    detail: list[dict[str, JsonValue]] | str
