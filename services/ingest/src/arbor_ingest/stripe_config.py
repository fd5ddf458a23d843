"""Stripe webhook options, read from the service settings.

``IngestSettings`` holds the signing secret (``ARBOR_INGEST_STRIPE_WEBHOOK_SECRET``)
and the tolerance. Stripe states no time zone, and no country or currency for many
objects; the defaults below fill them, and settings named ``stripe_default_country``,
``stripe_default_time_zone`` and ``stripe_default_currency`` override them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from arbor_ingest.domain.stripe import DEFAULT_TOLERANCE_SECONDS
from arbor_ingest.domain.stripe_objects import StripeDefaults

DEFAULTS = StripeDefaults(country="US", time_zone="UTC", currency="USD")


@dataclass(frozen=True)
class StripeOptions:
    secret: SecretStr
    tolerance_seconds: int
    defaults: StripeDefaults


def stripe_options(settings: object) -> StripeOptions | None:
    """The webhook options, or None while no signing secret is configured."""
    secret = getattr(settings, "stripe_webhook_secret", None)
    if not isinstance(secret, SecretStr) or not secret.get_secret_value():
        return None
    tolerance = getattr(settings, "stripe_tolerance_seconds", None)
    defaults = StripeDefaults(
        country=_text(settings, "stripe_default_country", DEFAULTS.country),
        time_zone=_text(settings, "stripe_default_time_zone", DEFAULTS.time_zone),
        currency=_text(settings, "stripe_default_currency", DEFAULTS.currency),
    )
    return StripeOptions(
        secret=secret,
        tolerance_seconds=(
            tolerance if isinstance(tolerance, int) else DEFAULT_TOLERANCE_SECONDS
        ),
        defaults=defaults,
    )


def _text(settings: object, name: str, default: str) -> str:
    value = getattr(settings, name, None)
    return value if isinstance(value, str) and value else default
