"""Calendar arithmetic in the customer's zone: windows, business days, holidays."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays

from arbor_dunning.domain.policy import ContactRules

WEEK = timedelta(days=7)
_MAX_DAYS_AHEAD = 60


@dataclass(frozen=True)
class Locale:
    """Where a customer lives, as far as contact rules care."""

    time_zone: str
    country: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


def step_instant(
    due_date: date, offset_days: int, locale: Locale, rules: ContactRules
) -> datetime:
    """When a step falls due: ``due + offset`` days at the window's start, locally.

    Days are counted on the calendar in the customer's zone, so a daylight-saving
    change never shifts a reminder by an hour or onto another day.
    """
    day = due_date + timedelta(days=offset_days)
    return next_allowed(_local(day, rules, locale), locale, rules)


def next_allowed(moment: datetime, locale: Locale, rules: ContactRules) -> datetime:
    """The first instant at or after ``moment`` inside the window on an open day."""
    local = moment.astimezone(locale.zone)
    for _ in range(_MAX_DAYS_AHEAD):
        day = local.date()
        if rules.business_days and not is_business_day(day, locale.country):
            local = _local(day + timedelta(days=1), rules, locale)
        elif local.timetz().replace(tzinfo=None) < rules.window_start:
            local = _local(day, rules, locale)
        elif local.timetz().replace(tzinfo=None) >= rules.window_end:
            local = _local(day + timedelta(days=1), rules, locale)
        else:
            return local.astimezone(UTC)
    raise ValueError(f"no contact day within {_MAX_DAYS_AHEAD} days of {moment}")


def after_weekly_cap(
    candidate: datetime,
    contacts: Sequence[datetime],
    locale: Locale,
    rules: ContactRules,
) -> datetime:
    """The first allowed instant from ``candidate`` that keeps under the weekly cap.

    The cap counts contacts on every channel in the rolling week before the send; when
    it is full the send waits until enough of them have aged out.
    """
    moment = next_allowed(candidate, locale, rules)
    for _ in range(_MAX_DAYS_AHEAD):
        recent = sorted(c for c in contacts if moment - WEEK < c <= moment)
        if len(recent) < rules.weekly_cap:
            return moment
        release = recent[len(recent) - rules.weekly_cap] + WEEK
        moment = next_allowed(release + timedelta(seconds=1), locale, rules)
    raise ValueError(f"weekly cap never frees up after {candidate}")


def is_business_day(day: date, country: str) -> bool:
    """Monday to Friday and not a public holiday of ``country``."""
    return day.weekday() < 5 and day not in _holidays(country, day.year)


def local_date(moment: datetime, locale: Locale) -> date:
    """The calendar date of ``moment`` in the customer's zone."""
    return moment.astimezone(locale.zone).date()


def start_of_day(day: date, locale: Locale) -> datetime:
    """Midnight opening ``day`` in the customer's zone, as a UTC instant."""
    return _normalise(datetime(day.year, day.month, day.day, tzinfo=locale.zone))


def _local(day: date, rules: ContactRules, locale: Locale) -> datetime:
    start = rules.window_start
    wall = datetime(
        day.year, day.month, day.day, start.hour, start.minute, tzinfo=locale.zone
    )
    return _normalise(wall).astimezone(locale.zone)


def _normalise(moment: datetime) -> datetime:
    # A wall time inside a spring-forward gap does not exist; the round trip through
    # UTC moves it to the real instant just after the gap.
    return moment.astimezone(UTC)


@functools.lru_cache(maxsize=256)
def _holidays(country: str, year: int) -> frozenset[date]:
    try:
        calendar = holidays.country_holidays(country, years=year)
    except NotImplementedError:
        # A country the library does not know: weekends still close, holidays do not.
        return frozenset()
    return frozenset(calendar.keys())
