"""Events about the platform itself rather than about billing."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from arbor_shared import topics
from arbor_shared.events.base import EventData, Instant


class ClockAdvanced(EventData):
    """Simulated time moved forward to ``now`` (replays and the demo only).

    Services in event-time mode fire due dates, timers and dunning steps from this
    watermark instead of the wall clock, so replaying old history never sends a real
    reminder. ``customer_id`` is ``"*"``: the tick concerns every customer.
    """

    event_type = "ClockAdvanced"
    topic = topics.CLOCK

    customer_id: Literal["*"] = "*"
    now: Instant


class BillingDetailsChanged(EventData):
    """A customer changed their billing details in the portal."""

    event_type = "BillingDetailsChanged"
    topic = topics.CUSTOMERS

    changed_fields: tuple[str, ...] = Field(min_length=1)
    email: str | None = Field(default=None, max_length=254)
    preferred_channel: Literal["email", "sms", "letter"] | None = None
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")
    time_zone: str | None = Field(default=None, max_length=64)
    changed_at: Instant
