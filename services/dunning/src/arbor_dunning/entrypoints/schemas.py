"""Request and response models of dunning's operations API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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


class SimulationCreate(_Strict):
    """A candidate policy and the past to replay it on: a CSV or a list of events."""

    policy: PolicyDocument
    cohort: str = Field(default="default", min_length=1, max_length=64, pattern=_COHORT)
    csv: str | None = Field(default=None, max_length=5_000_000)
    events: list[dict[str, Any]] | None = Field(default=None, max_length=50_000)
    currency: Currency = "USD"
    time_zone: str = Field(default="UTC", min_length=1, max_length=64)
    country: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    until: datetime | None = Field(default=None, strict=False)
    limit: int = Field(default=1000, ge=1, le=10_000)


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
