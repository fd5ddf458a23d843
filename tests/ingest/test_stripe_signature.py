"""Stripe's webhook signature scheme, and Stripe amounts as ISO minor units."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from arbor_ingest.domain.stripe import (
    SignatureError,
    StripePayloadError,
    currency_of,
    parse_event,
    sign,
    to_minor,
    verify_signature,
)

SECRET = "whsec_unit"
BODY = b'{"id": "evt_1", "object": "event"}'
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())


def test_signature_made_as_stripe_documents_is_accepted() -> None:
    verify_signature(BODY, sign(BODY, SECRET, timestamp=T), SECRET, now=NOW)


def test_any_one_of_several_v1_signatures_may_match_during_secret_rollover() -> None:
    good = sign(BODY, SECRET, timestamp=T).split(",")[1]
    header = f"t={T},v1={'0' * 64},{good},v0=ignored"

    verify_signature(BODY, header, SECRET, now=NOW)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (sign(BODY, "whsec_other", timestamp=T), "no v1 signature matches"),
        (sign(BODY + b" ", SECRET, timestamp=T), "no v1 signature matches"),
        (sign(BODY, SECRET, timestamp=T - 301), "tolerance is 300 s"),
        (sign(BODY, SECRET, timestamp=T + 301), "tolerance is 300 s"),
        (None, "missing"),
        ("", "missing"),
        (f"v1={'0' * 64}", "no valid t="),
        (f"t=abc,v1={'0' * 64}", "no valid t="),
        (f"t={T}", "no v1="),
        (f"t={T},v0=abc", "no v1="),
    ],
)
def test_bad_signature_header_is_refused_with_the_reason(
    header: str | None, reason: str
) -> None:
    # The body used to sign differs for the tampered case; verification uses BODY.
    with pytest.raises(SignatureError, match=reason):
        verify_signature(BODY, header, SECRET, now=NOW)


def test_timestamp_inside_a_custom_tolerance_is_accepted() -> None:
    header = sign(BODY, SECRET, timestamp=T - 550)

    verify_signature(BODY, header, SECRET, now=NOW, tolerance_seconds=600)


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        (1099, "USD", 1099),
        (500, "JPY", 500),  # zero-decimal at Stripe and in ISO 4217
        (1230, "BHD", 1230),  # three decimals at both
        (12_300, "ISK", 123),  # Stripe sends ISK with two zero decimals; ISO has 0
        (500, "MGA", 50_000),  # zero-decimal at Stripe; ISO gives MGA 2
        (0, "EUR", 0),
    ],
)
def test_stripe_amounts_become_iso_minor_units(
    amount: int, currency: str, minor: int
) -> None:
    assert to_minor(amount, currency) == minor


@pytest.mark.parametrize("amount", [12_345, -1, 10.5, "100", True, None])
def test_amounts_that_are_not_whole_iso_units_are_refused(amount: object) -> None:
    with pytest.raises(StripePayloadError):
        to_minor(amount, "ISK")


def test_currency_is_upper_cased_and_must_be_iso_4217() -> None:
    assert currency_of("usd") == "USD"
    with pytest.raises(
        StripePayloadError, match="currency 'xyz' is not an active ISO 4217"
    ):
        currency_of("xyz")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b'{"object": "charge"}', "not a Stripe Event"),
        (b'{"object": "event", "id": "ch_1"}', "evt_"),
        (
            b'{"object": "event", "id": "evt_1", "type": "x", "created": "1"}',
            "Unix timestamp",
        ),
        (
            b'{"object": "event", "id": "evt_1", "type": "x", "created": 1, '
            b'"data": {"object": []}}',
            "data.object",
        ),
    ],
)
def test_body_that_is_not_a_stripe_event_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(StripePayloadError, match=reason):
        parse_event(body)
