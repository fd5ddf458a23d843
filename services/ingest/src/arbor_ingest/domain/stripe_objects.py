"""Reading Stripe objects: the shapes the mappers share, and their defaults.

Stripe sends references either as ids or, when expanded, as objects with an ``id``;
both are accepted. Stripe carries no time zone, so calendar dates of Stripe
timestamps are taken in the configured default zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from arbor_ingest.domain.stripe import StripeEvent, StripePayloadError, moment
from arbor_shared.events import EventData

StripeObject = dict[str, Any]


@dataclass(frozen=True)
class StripeDefaults:
    """What Stripe does not say: the customer's country, zone and currency."""

    country: str
    time_zone: str
    currency: str


@dataclass(frozen=True)
class Booking:
    """A Stripe object already turned into canonical events, found again by key.

    Keys: ``payment:<pi or ch id>`` and ``charge:<ch id>`` for money received,
    ``failure:<id>``, ``refund:<re id>`` and ``dispute:<dp id>``.
    """

    key: str
    customer_id: str
    stripe_event_id: str
    invoice_id: str | None = None
    payment_id: str | None = None


@dataclass(frozen=True)
class Mapped:
    """Canonical events for one Stripe event, and what to remember about it."""

    events: tuple[tuple[str, EventData], ...]
    bookings: tuple[Booking, ...] = ()


@dataclass(frozen=True)
class Ignored:
    """A Stripe event acknowledged without canonical events, and why."""

    reason: str


Outcome = Mapped | Ignored


def ref(obj: StripeObject, field: str) -> str | None:
    """The id in ``obj[field]``, whether Stripe sent an id or an expanded object."""
    value = obj.get(field)
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def required_ref(obj: StripeObject, field: str) -> str:
    value = ref(obj, field)
    if value is None:
        raise StripePayloadError(f"{obj.get('object', 'object')}.{field} is missing")
    return value


def timestamp(obj: StripeObject, field: str, event: StripeEvent) -> datetime:
    """``obj[field]`` as a moment; the event's own time when Stripe left it null."""
    value = obj.get(field)
    if isinstance(value, int) and not isinstance(value, bool):
        return moment(value)
    return event.created


def local_date(at: datetime, time_zone: str) -> date:
    return at.astimezone(zone(time_zone)).date()


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise StripePayloadError(f"{name!r} is not an IANA time zone") from None


def valid_zone(name: object) -> str | None:
    if not isinstance(name, str):
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


_DIRECT_DEBIT = {"sepa_debit", "bacs_debit", "us_bank_account", "acss_debit"}
_BANK_TRANSFER = {"customer_balance", "ach_credit_transfer", "sofort", "ideal"}


def payment_method(kind: object) -> str:
    """Stripe's payment method type as the canonical method."""
    if kind == "card":
        return "card"
    if kind in _DIRECT_DEBIT or kind == "au_becs_debit":
        return "direct_debit"
    if kind in _BANK_TRANSFER:
        return "bank_transfer"
    return "other"
