"""Contact rules in the customer's zone: windows, business days, holidays, caps."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from arbor_dunning.domain.calendar import (
    Locale,
    after_weekly_cap,
    is_business_day,
    next_allowed,
    step_instant,
)
from arbor_dunning.domain.policy import ContactRules

RULES = ContactRules(window_start=time(9), window_end=time(18), weekly_cap=3)
NEW_YORK = Locale("America/New_York", "US")
BERLIN = Locale("Europe/Berlin", "DE")
SYDNEY = Locale("Australia/Sydney", "AU")


@pytest.mark.parametrize(
    ("locale", "due", "offset", "expected"),
    [
        # New York springs forward on Sunday 8 March 2026: 09:00 is 14:00 UTC before
        # and 13:00 UTC after; a step never drifts by the hour.
        (NEW_YORK, date(2026, 3, 9), -3, datetime(2026, 3, 6, 14, tzinfo=UTC)),
        (NEW_YORK, date(2026, 3, 9), 0, datetime(2026, 3, 9, 13, tzinfo=UTC)),
        # Due on the Sunday of the change itself: moved to Monday, 09:00 EDT.
        (NEW_YORK, date(2026, 3, 8), 0, datetime(2026, 3, 9, 13, tzinfo=UTC)),
        # Berlin: Good Friday 3 April and Easter Monday 6 April 2026 are holidays,
        # and CEST began on 29 March.
        (BERLIN, date(2026, 4, 3), 0, datetime(2026, 4, 7, 7, tzinfo=UTC)),
        (BERLIN, date(2026, 3, 27), 0, datetime(2026, 3, 27, 8, tzinfo=UTC)),
        (BERLIN, date(2026, 3, 27), 3, datetime(2026, 3, 30, 7, tzinfo=UTC)),
        # Sydney falls back on Sunday 5 April 2026 (AEDT +11 to AEST +10), and
        # Good Friday and Easter Monday are public holidays there too.
        (SYDNEY, date(2026, 4, 2), 0, datetime(2026, 4, 1, 22, tzinfo=UTC)),
        (SYDNEY, date(2026, 4, 2), 1, datetime(2026, 4, 6, 23, tzinfo=UTC)),
    ],
)
def test_step_lands_at_window_start_on_a_local_business_day(
    locale: Locale, due: date, offset: int, expected: datetime
) -> None:
    assert step_instant(due, offset, locale, RULES) == expected


def test_after_hours_moment_moves_to_next_business_morning() -> None:
    friday_evening = datetime(2026, 3, 13, 23, 30, tzinfo=UTC)  # 19:30 EDT

    assert next_allowed(friday_evening, NEW_YORK, RULES) == datetime(
        2026, 3, 16, 13, tzinfo=UTC
    )


def test_moment_inside_window_is_kept() -> None:
    moment = datetime(2026, 3, 10, 15, 45, tzinfo=UTC)  # 11:45 EDT, a Tuesday

    assert next_allowed(moment, NEW_YORK, RULES) == moment


def test_calendar_days_allow_weekends_when_business_days_are_off() -> None:
    rules = ContactRules(business_days=False)

    assert step_instant(date(2026, 4, 3), 0, BERLIN, rules) == datetime(
        2026, 4, 3, 7, tzinfo=UTC
    )


def test_holidays_come_from_the_customers_country() -> None:
    independence_day = date(2026, 7, 3)  # observed on Friday in the US

    assert not is_business_day(independence_day, "US")
    assert is_business_day(independence_day, "DE")
    assert is_business_day(date(2026, 7, 6), "ZZ")  # unknown country: weekdays


def test_weekly_cap_waits_until_the_oldest_contact_ages_out() -> None:
    monday = datetime(2026, 3, 9, 13, tzinfo=UTC)
    contacts = [monday, monday + timedelta(days=1), monday + timedelta(days=2)]
    candidate = monday + timedelta(days=3)

    allowed = after_weekly_cap(candidate, contacts, NEW_YORK, RULES)

    # The Monday contact leaves the rolling week a second after next Monday 09:00.
    assert allowed == monday + timedelta(days=7, seconds=1)


def test_weekly_cap_lets_a_contact_through_below_the_cap() -> None:
    monday = datetime(2026, 3, 9, 13, tzinfo=UTC)
    contacts = [monday - timedelta(days=7), monday, monday + timedelta(days=1)]

    assert after_weekly_cap(monday + timedelta(days=2), contacts, NEW_YORK, RULES) == (
        monday + timedelta(days=2)
    )
