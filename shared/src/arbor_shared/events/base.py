"""The base of every event's data model.

Event data is strict and frozen: unknown fields are an error, amounts must be real
integers, and a value once published never changes shape without a new schema version.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _require_aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("must carry a time zone offset")
    return moment


Instant = Annotated[datetime, AfterValidator(_require_aware)]
"""A timezone-aware moment; naive datetimes are refused."""

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\w.:\-]+$")]
"""An external identifier: letters, digits and ``_ . : -``."""

MinorUnits = Annotated[int, Field(strict=True, ge=0)]
"""A non-negative amount in integer minor units."""

SignedMinorUnits = Annotated[int, Field(strict=True)]
"""An amount in integer minor units that may be negative (an adjustment)."""

CalendarDate = date
"""A calendar date in the customer's billing time zone."""


class StrictModel(BaseModel):
    """Frozen, strict, closed: the shape every event part shares."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class EventData(StrictModel):
    """Data of one event type; subclasses set ``event_type`` and ``topic``."""

    event_type: ClassVar[str]
    topic: ClassVar[str]
    schema_version: ClassVar[int] = 1

    customer_id: Identifier
