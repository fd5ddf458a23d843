"""Request and response models of dunning's operations API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi.openapi.models import Example
from pydantic import BaseModel, ConfigDict, Field, model_validator

from arbor_dunning.adapters.policy_document import PolicyDocument
from arbor_shared.money import Currency

_COHORT = r"^[A-Za-z0-9_.:\-]+$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PolicyCreate(_Strict):
    """A new version of a cohort's policy; it applies from the moment it is stored."""

    cohort: str = Field(min_length=1, max_length=64, pattern=_COHORT)
    policy: PolicyDocument


class PolicyRead(BaseModel):
    cohort: str
    version: int
    policy_id: str
    policy: PolicyDocument
    created_by: str
    created_at: datetime | None


SimulationSource = Literal["csv", "events", "topics"]


class SimulationCreate(_Strict):
    """A candidate policy and the past to replay it on: a CSV, events or the topics."""

    policy: PolicyDocument
    cohort: str = Field(default="default", min_length=1, max_length=64, pattern=_COHORT)
    source: SimulationSource | None = Field(
        default=None,
        description="Where the past comes from: `csv`, `events` (both in this "
        "body) or `topics` (the customer, invoice and ledger topics dunning "
        "consumes, read from the beginning). Without it, whichever of `csv` "
        "and `events` is given.",
    )
    csv: str | None = Field(default=None, max_length=5_000_000)
    events: list[dict[str, Any]] | None = Field(default=None, max_length=50_000)
    max_records: int = Field(
        default=10_000,
        ge=1,
        le=100_000,
        description="With `topics`: read at most this many records.",
    )
    currency: Currency = "USD"
    time_zone: str = Field(default="UTC", min_length=1, max_length=64)
    country: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    until: datetime | None = Field(default=None, strict=False)
    limit: int = Field(default=1000, ge=1, le=10_000)

    @model_validator(mode="after")
    def _one_past(self) -> SimulationCreate:
        given = [name for name in ("csv", "events") if getattr(self, name) is not None]
        if self.source is None and len(given) != 1:
            raise ValueError("give exactly one of csv and events, or source 'topics'")
        if self.source == "topics" and given:
            raise ValueError(f"source 'topics' reads the topics; drop {given}")
        if self.source in ("csv", "events") and given != [self.source]:
            raise ValueError(f"source {self.source!r} needs {self.source} and no other")
        return self

    @property
    def past_source(self) -> SimulationSource:
        """The source to replay, once the validator has checked there is one."""
        return self.source or ("csv" if self.csv is not None else "events")


class SimulatedActionRead(BaseModel):
    customer_id: str
    invoice_id: str
    step: str
    channel: str
    send_at: datetime
    variant: str | None
    fee_minor: int | None
    incentive: str | None


class SimulationRead(BaseModel):
    invoices: int
    contacted_invoices: int
    actions_total: int
    actions_by_step: dict[str, int]
    fees_minor: int
    actions: list[SimulatedActionRead]
    truncated: bool
    records_read: int | None = Field(
        default=None, description="With `topics`: the records read from them."
    )
    reached_end: bool | None = Field(
        default=None,
        description="With `topics`: false when `max_records` stopped the read "
        "before the topics' ends, so the past replayed is only the oldest part.",
    )


class ActionRead(BaseModel):
    """One sent, pending or stopped action, with why it was (or will be) taken."""

    invoice_id: str
    step: str
    channel: str
    state: str
    at: datetime | None
    policy_version: int
    variant: str | None
    cohort: str
    reason: dict[str, Any]
    cancel_reason: str | None = None


class CustomerDunningRead(BaseModel):
    customer_id: str
    cohort: str
    time_zone: str
    sent: list[ActionRead]
    upcoming: list[ActionRead]
    stopped: list[ActionRead]


_EXAMPLE_POLICY = {
    "steps": [
        {
            "name": "courtesy",
            "offset_days": -3,
            "channel": "email",
            "template": "courtesy",
        },
        {
            "name": "due_today",
            "offset_days": 0,
            "channel": "email",
            "template": "due_today",
        },
    ]
}
SIMULATION_EXAMPLES: dict[str, Example] = {
    "topics": {
        "summary": "Replay the topics dunning consumes",
        "description": "Customers, invoices and the ledger from the beginning, at "
        "most `max_records` records; offsets are never committed.",
        "value": {"policy": _EXAMPLE_POLICY, "source": "topics", "max_records": 50_000},
    },
    "csv": {
        "summary": "Replay an accounts-receivable CSV",
        "value": {
            "policy": _EXAMPLE_POLICY,
            "source": "csv",
            "csv": "customerID,invoiceNumber,DueDate,InvoiceAmount,SettledDate\n"
            "8976-AMJEO,0007900770,2/25/2013,61.74,3/3/2013\n",
            "currency": "USD",
            "time_zone": "America/New_York",
        },
    },
    "events": {
        "summary": "Replay canonical events given in the body",
        "value": {
            "policy": _EXAMPLE_POLICY,
            "source": "events",
            "events": [
                {
                    "type": "InvoiceIssued",
                    "data": {
                        "customer_id": "cus-1",
                        "invoice_id": "inv-1",
                        "number": "N-1",
                        "currency": "EUR",
                        "amount_minor": 120000,
                        "issue_date": "2026-02-14",
                        "due_date": "2026-03-16",
                        "issued_at": "2026-02-14T09:00:00Z",
                    },
                }
            ],
        },
    },
}
