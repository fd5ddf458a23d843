"""Disputes, promises to pay and payment plans: the customer's side of collection."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from arbor_shared import topics
from arbor_shared.events.base import (
    CalendarDate,
    EventData,
    Identifier,
    Instant,
    MinorUnits,
)
from arbor_shared.money import Currency

DisputeOutcome = Literal["won", "lost", "withdrawn"]
Origin = Literal["portal", "internal", "provider"]


class DisputeOpened(EventData):
    event_type = "DisputeOpened"
    topic = topics.CASES

    dispute_id: Identifier
    invoice_id: Identifier
    currency: Currency
    amount_minor: MinorUnits
    reason: str = Field(min_length=1, max_length=1000)
    origin: Origin = "internal"
    opened_at: Instant


class DisputeResolved(EventData):
    """A dispute closed; ``won`` means the business won (the debt stands)."""

    event_type = "DisputeResolved"
    topic = topics.CASES

    dispute_id: Identifier
    invoice_id: Identifier
    outcome: DisputeOutcome
    resolved_at: Instant


class PromiseToPayMade(EventData):
    event_type = "PromiseToPayMade"
    topic = topics.CASES

    promise_id: Identifier
    invoice_id: Identifier
    currency: Currency
    amount_minor: MinorUnits
    promised_date: CalendarDate
    origin: Origin = "portal"
    made_at: Instant


class PromiseToPayKept(EventData):
    event_type = "PromiseToPayKept"
    topic = topics.CASES

    promise_id: Identifier
    invoice_id: Identifier
    kept_at: Instant


class PromiseToPayBroken(EventData):
    """The promised date passed with the promised amount unpaid."""

    event_type = "PromiseToPayBroken"
    topic = topics.CASES

    promise_id: Identifier
    invoice_id: Identifier
    promised_date: CalendarDate
    broken_at: Instant


class PaymentPlanRequested(EventData):
    event_type = "PaymentPlanRequested"
    topic = topics.CASES

    request_id: Identifier
    invoice_id: Identifier
    installments: int = Field(strict=True, ge=2, le=24)
    note: str | None = Field(default=None, max_length=1000)
    requested_at: Instant
