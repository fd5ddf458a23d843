"""What dunning did or plans to do, each with the reason it was done."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from arbor_shared import topics
from arbor_shared.events.base import (
    CalendarDate,
    EventData,
    Identifier,
    Instant,
    MinorUnits,
    StrictModel,
)
from arbor_shared.events.billing import Channel
from arbor_shared.money import Currency

IncentiveKind = Literal["early_payment_discount", "payment_plan_offer", "fee_waiver"]
CancelReason = Literal[
    "settled",
    "credited",
    "written_off",
    "disputed",
    "promised",
    "superseded",
    "voided",
    "missed_during_outage",
]


class ActionReason(StrictModel):
    """Why an action was taken: the policy, the cohort and the facts it relied on."""

    policy_id: str
    policy_version: int
    variant: str | None = None
    cohort: str
    step: str
    facts: dict[str, JsonValue] = Field(default_factory=dict)


class ReminderScheduled(EventData):
    event_type = "ReminderScheduled"
    topic = topics.DUNNING

    invoice_id: Identifier
    step: str
    channel: Channel
    scheduled_for: Instant
    reason: ActionReason


class ReminderSent(EventData):
    event_type = "ReminderSent"
    topic = topics.DUNNING

    invoice_id: Identifier
    step: str
    channel: Channel
    template: str
    balance_minor: MinorUnits
    currency: Currency
    sent_at: Instant
    reason: ActionReason


class ReminderCancelled(EventData):
    event_type = "ReminderCancelled"
    topic = topics.DUNNING

    invoice_id: Identifier
    step: str
    cancel_reason: CancelReason
    cancelled_at: Instant


class LateFeeAssessed(EventData):
    """A fee for the billing system of record to add; dunning never edits invoices."""

    event_type = "LateFeeAssessed"
    topic = topics.DUNNING

    invoice_id: Identifier
    fee_id: Identifier
    currency: Currency
    amount_minor: MinorUnits
    period: str
    assessed_at: Instant
    reason: ActionReason


class IncentiveOffered(EventData):
    event_type = "IncentiveOffered"
    topic = topics.DUNNING

    invoice_id: Identifier
    kind: IncentiveKind
    percent: str | None = None
    valid_until: CalendarDate | None = None
    offered_at: Instant
    reason: ActionReason


class EscalationRaised(EventData):
    """A task for a person on the collections team, not a message to the customer."""

    event_type = "EscalationRaised"
    topic = topics.DUNNING

    invoice_id: Identifier
    balance_minor: MinorUnits
    currency: Currency
    raised_at: Instant
    reason: ActionReason
