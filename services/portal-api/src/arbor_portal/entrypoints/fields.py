"""Field types of the portal's request models: strict, bounded, card-number-free."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from zoneinfo import available_timezones

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, StrictStr

from arbor_portal.domain.cards import contains_card_number

_ZONES = frozenset(available_timezones())

STRICT_INPUT = ConfigDict(extra="forbid", str_strip_whitespace=False)
"""Request models refuse unknown fields (customer_id, cohort, credit_limit, ...)."""


def _no_card_number(value: str) -> str:
    if contains_card_number(value):
        # The value itself is never echoed: the 422 body leaves out the input.
        raise ValueError("looks like a payment card number, which is never accepted")
    return value


def _storable(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and a lone surrogate (legal in JSON escapes)
    # is not UTF-8 at all: refuse both here instead of failing at the database.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


def _iana_zone(value: str) -> str:
    if value not in _ZONES:
        raise ValueError("must be an IANA time zone such as Europe/Paris")
    return value


def _date_from_text(value: Any) -> Any:
    # JSON has no date type: accept ISO text only, never a number of seconds.
    if not isinstance(value, str | date):
        raise ValueError("must be an ISO 8601 date (YYYY-MM-DD)")
    return value


def text(max_length: int, *, min_length: int = 1) -> Any:
    """A free-text field: a real string, bounded, with no card number in it."""
    return Annotated[
        StrictStr,
        Field(min_length=min_length, max_length=max_length),
        AfterValidator(_storable),
        AfterValidator(_no_card_number),
    ]


Text200 = text(200)
Text1000 = text(1000)
Text4000 = text(4000)
Email = Annotated[
    StrictStr,
    Field(
        min_length=3,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        examples=["billing@example.com"],
    ),
    AfterValidator(_storable),
    AfterValidator(_no_card_number),
]
TimeZone = Annotated[
    StrictStr,
    Field(max_length=64, examples=["Europe/Paris"]),
    AfterValidator(_iana_zone),
]
IsoDate = Annotated[date, BeforeValidator(_date_from_text)]
Identifier = Annotated[
    StrictStr, Field(min_length=1, max_length=128, pattern=r"^[\w.:\-]+$")
]
PositiveMinor = Annotated[int, Field(strict=True, ge=1, le=10**15)]
ProviderToken = Annotated[
    StrictStr,
    Field(min_length=3, max_length=128, pattern=r"^[A-Za-z][\w\-]*$"),
    AfterValidator(_no_card_number),
]
Subject = Annotated[
    StrictStr,
    Field(min_length=1, max_length=255),
    AfterValidator(_storable),
    AfterValidator(_no_card_number),
]
