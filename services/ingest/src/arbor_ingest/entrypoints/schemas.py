"""Request and response models of the ingest API."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from arbor_shared.events import EVENT_TYPES

_TYPE_NAMES: list[JsonValue] = [*sorted(EVENT_TYPES)]


class EventCreate(BaseModel):
    """A canonical event submitted by an internal system."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
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
            ]
        },
    )

    id: str = Field(
        default_factory=lambda: str(uuid.uuid4()),
        min_length=1,
        max_length=128,
        description="The publisher's event id; resubmitting it is a no-op",
    )
    type: str = Field(
        description="The event type", json_schema_extra={"enum": _TYPE_NAMES}
    )
    data: dict[str, JsonValue]


class EventRead(BaseModel):
    id: str
    status: Literal["accepted", "duplicate"]


class Problem(BaseModel):
    """One thing wrong with the request."""

    field: str
    reason: str
