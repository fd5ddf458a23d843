"""Plain rules of the portal: card detection, aging, on-time record, rate limits."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from arbor_portal.domain.account import (
    DueInvoice,
    OpenItem,
    age_open_items,
    aging_bucket,
    local_today,
    on_time_record,
)
from arbor_portal.domain.cards import contains_card_number, luhn_valid
from arbor_portal.domain.ratelimit import RateLimiter, retry_after_seconds


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111111",
        "card 4111 1111 1111 1111 thanks",
        "5500-0000-0000-0004",
        "378282246310005",
        "4111 1111 1111 1111 12/27",
        "6011000990139424",
    ],
)
def test_card_numbers_are_found(text: str) -> None:
    assert contains_card_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111112",
        "PO 4500012345",
        "+33 1 23 45 67 89",
        "1234567890123",
        "order 12345678901234567890123",
        "",
        "2024-03-31",
    ],
)
def test_ordinary_numbers_are_not_card_numbers(text: str) -> None:
    assert not contains_card_number(text)


def test_luhn_accepts_the_standard_test_number() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


@pytest.mark.parametrize(
    ("days", "bucket"),
    [
        (-3, "current"),
        (0, "current"),
        (1, "1_30"),
        (30, "1_30"),
        (31, "31_60"),
        (61, "61_90"),
        (90, "61_90"),
        (91, "90_plus"),
    ],
)
def test_aging_buckets_follow_the_brief(days: int, bucket: str) -> None:
    assert aging_bucket(days) == bucket


def test_aging_never_adds_currencies() -> None:
    today = date(2024, 4, 30)
    items = [
        OpenItem("EUR", 100, date(2024, 4, 1)),
        OpenItem("USD", 50, date(2024, 5, 1)),
        OpenItem("EUR", 10, date(2024, 1, 1)),
    ]

    eur, usd = age_open_items(items, today)

    assert (eur.currency, eur.open_minor, eur.overdue_minor) == ("EUR", 110, 110)
    assert eur.buckets["1_30"] == 100
    assert eur.buckets["90_plus"] == 10
    assert (usd.currency, usd.overdue_minor, usd.buckets["current"]) == ("USD", 0, 50)


def test_today_is_the_customers_calendar_date() -> None:
    moment = datetime(2024, 3, 31, 13, 0, tzinfo=UTC)

    assert local_today(moment, "Pacific/Auckland") == date(2024, 4, 1)
    assert local_today(moment, "America/Los_Angeles") == date(2024, 3, 31)
    assert local_today(moment, None) == date(2024, 3, 31)


def test_open_past_due_counts_as_late_and_not_yet_due_is_left_out() -> None:
    today = date(2024, 4, 10)
    record = on_time_record(
        [
            DueInvoice(date(2024, 3, 31), date(2024, 3, 30)),
            DueInvoice(date(2024, 3, 31), date(2024, 4, 2)),
            DueInvoice(date(2024, 4, 1), None),
            DueInvoice(date(2024, 5, 1), None),
        ],
        today,
    )

    assert (record.invoices_due, record.paid_on_time, record.rate_percent) == (3, 1, 33)


def test_rate_limiter_refills_over_time_per_key() -> None:
    limiter = RateLimiter(rate=2.0, burst=2)

    assert [limiter.acquire("a", 0.0) for _ in range(2)] == [0.0, 0.0]
    assert limiter.acquire("a", 0.0) == pytest.approx(0.5)
    assert limiter.acquire("b", 0.0) == 0.0
    assert limiter.acquire("a", 0.5) == 0.0
    assert retry_after_seconds(0.2) == 1


def test_rate_limiter_forgets_the_least_recent_key_beyond_its_bound() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_tracked=2)
    limiter.acquire("a", 0.0)
    limiter.acquire("b", 0.0)

    limiter.acquire("c", 0.0)

    assert limiter.acquire("a", 0.0) == 0.0
