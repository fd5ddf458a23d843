"""Stripe webhooks: the signature Stripe documents, the Event envelope and amounts.

Signature: ``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`` where each
``v1`` is HMAC-SHA256 of ``f"{t}.{raw body}"`` under the endpoint's signing secret.
Several ``v1`` entries appear while a secret is being rolled; any one matching is
enough. Other schemes (``v0`` test signatures) are ignored, as Stripe's libraries do.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from arbor_ingest.domain.errors import IngestError
from arbor_shared.money import UnknownCurrencyError, currency_exponent

DEFAULT_TOLERANCE_SECONDS = 300

# Stripe's amounts are "the smallest currency unit" by Stripe's own table, which
# differs from ISO 4217 for a few codes: MGA is zero-decimal at Stripe (ISO: 2), and
# ISK is sent as a two-decimal amount whose decimals are always 00 (ISO: 0). The
# three-decimal currencies (BHD, JOD, KWD, OMR, TND) agree with ISO. Every other
# supported code uses its ISO exponent.
_STRIPE_EXPONENTS = {"MGA": 0, "ISK": 2}


class StripeError(IngestError):
    """A webhook delivery that cannot be taken as a Stripe event."""


class SignatureError(StripeError):
    """The ``Stripe-Signature`` header is missing, malformed, stale or wrong."""


class StripePayloadError(StripeError):
    """The verified body is not a Stripe Event envelope."""


@dataclass(frozen=True)
class StripeEvent:
    """The Event envelope: its id, type, creation moment and ``data.object``."""

    id: str
    type: str
    created: datetime
    object: dict[str, Any]
    livemode: bool = False


def verify_signature(
    body: bytes,
    header: str | None,
    secret: str,
    *,
    now: datetime,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Refuse unless ``header`` signs ``body`` recently with ``secret``."""
    timestamp, signatures = _parse_header(header)
    age = abs(now.timestamp() - timestamp)
    if age > tolerance_seconds:
        raise SignatureError(
            f"timestamp is {int(age)} s away from now; tolerance is "
            f"{tolerance_seconds} s"
        )
    expected = _hmac_hex(secret, timestamp, body)
    # compare_digest against every candidate, without stopping early, so that the
    # time taken says nothing about which entry or how much of it matched.
    matches = [hmac.compare_digest(expected, candidate) for candidate in signatures]
    if not any(matches):
        raise SignatureError("no v1 signature matches the body")


def sign(body: bytes, secret: str, *, timestamp: int) -> str:
    """A ``Stripe-Signature`` header value for ``body``, as Stripe would send it."""
    return f"t={timestamp},v1={_hmac_hex(secret, timestamp, body)}"


def _hmac_hex(secret: str, timestamp: int, body: bytes) -> str:
    payload = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def _parse_header(header: str | None) -> tuple[int, list[str]]:
    if not header:
        raise SignatureError("the Stripe-Signature header is missing")
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            signatures.append(value)
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        raise SignatureError("the Stripe-Signature header has no valid t= timestamp")
    if not signatures:
        raise SignatureError("the Stripe-Signature header has no v1= signature")
    return int(timestamps[0]), signatures


def parse_event(body: bytes) -> StripeEvent:
    """Read the Event envelope of a verified body; raise StripePayloadError if not."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StripePayloadError(f"body is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("object") != "event":
        raise StripePayloadError('body is not a Stripe Event (object != "event")')
    event_id, event_type = document.get("id"), document.get("type")
    created, data = document.get("created"), document.get("data")
    if not isinstance(event_id, str) or not event_id.startswith("evt_"):
        raise StripePayloadError("id must be a Stripe event id (evt_...)")
    if not isinstance(event_type, str) or not event_type:
        raise StripePayloadError("type must be a non-empty string")
    if not isinstance(created, int) or isinstance(created, bool):
        raise StripePayloadError("created must be a Unix timestamp")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise StripePayloadError("data.object must be an object")
    return StripeEvent(
        id=event_id,
        type=event_type,
        created=moment(created),
        object=data["object"],
        livemode=document.get("livemode") is True,
    )


def moment(unix_seconds: int) -> datetime:
    """A Stripe timestamp as an aware UTC datetime."""
    try:
        return datetime.fromtimestamp(unix_seconds, UTC)
    except (ValueError, OverflowError, OSError):
        raise StripePayloadError(
            f"timestamp {unix_seconds} is not a representable moment"
        ) from None


def currency_of(stripe_code: object) -> str:
    """Stripe's lower-case currency as an ISO 4217 code; raise if it is not one."""
    if not isinstance(stripe_code, str):
        raise StripePayloadError("currency is missing")
    code = stripe_code.upper()
    try:
        currency_exponent(code)
    except UnknownCurrencyError:
        raise StripePayloadError(
            f"currency {stripe_code!r} is not an active ISO 4217 code"
        ) from None
    return code


def to_minor(stripe_amount: object, currency: str) -> int:
    """Convert a Stripe amount to ISO 4217 minor units of ``currency``."""
    if not isinstance(stripe_amount, int) or isinstance(stripe_amount, bool):
        raise StripePayloadError(f"amount {stripe_amount!r} is not an integer")
    if stripe_amount < 0:
        raise StripePayloadError(f"amount {stripe_amount} is negative")
    iso = currency_exponent(currency)
    shift: int = iso - _STRIPE_EXPONENTS.get(currency, iso)
    if shift >= 0:
        return stripe_amount * int(10**shift)
    divisor = int(10**-shift)
    if stripe_amount % divisor:
        raise StripePayloadError(
            f"{currency} amount {stripe_amount} has decimals ISO 4217 does not allow"
        )
    return stripe_amount // divisor
