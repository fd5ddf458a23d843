"""Cohort membership and risk: what segmentation concludes about a customer."""

from __future__ import annotations

from pydantic import Field, JsonValue

from arbor_shared import topics
from arbor_shared.events.base import (
    CalendarDate,
    EventData,
    Identifier,
    Instant,
)


class CohortChanged(EventData):
    """The customer moved cohort; ``version`` grows by one per move of this customer."""

    event_type = "CohortChanged"
    topic = topics.COHORTS

    from_cohort: str | None
    to_cohort: str
    definition_version: int = Field(strict=True, ge=1)
    rule: str
    features: dict[str, JsonValue]
    version: int = Field(strict=True, ge=1)
    changed_at: Instant


class InvoiceRiskAssessed(EventData):
    """The late-payment model's view of one open invoice."""

    event_type = "InvoiceRiskAssessed"
    topic = topics.RISK

    invoice_id: Identifier
    late_probability: float = Field(ge=0.0, le=1.0)
    expected_pay_date: CalendarDate
    model_version: str
    assessed_at: Instant
