"""Time, from one place, so that replays and simulations never read the wall clock.

In event-time mode the clock moves only forward, to the latest ``ClockAdvanced``
watermark a service has consumed; every service fed the same topic agrees on "now".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class EventClock:
    """Simulated time that advances from consumed watermarks and never goes back."""

    def __init__(self, start: datetime) -> None:
        self._now = _require_aware(start)

    def now(self) -> datetime:
        return self._now

    def advance_to(self, moment: datetime) -> bool:
        """Move forward to ``moment``; return False if it is not later than now."""
        if _require_aware(moment) <= self._now:
            return False
        self._now = moment
        return True


class FixedClock(EventClock):
    """A clock for tests that moves only when told."""


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _require_aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("clock times must be timezone-aware")
    return moment
