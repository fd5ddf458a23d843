"""Money: ISO 4217 exponents, exact conversion, one rounding rule."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from arbor_shared.money import (
    AmountPrecisionError,
    Money,
    UnknownCurrencyError,
    currency_exponent,
    format_amount,
    round_minor,
    to_minor,
)


@pytest.mark.parametrize(
    ("currency", "exponent"), [("JPY", 0), ("EUR", 2), ("HUF", 2), ("BHD", 3)]
)
def test_exponent_comes_from_iso_4217(currency: str, exponent: int) -> None:
    assert currency_exponent(currency) == exponent


def test_unknown_currency_is_named_in_the_error() -> None:
    with pytest.raises(UnknownCurrencyError, match="XYZ"):
        currency_exponent("XYZ")


def test_major_units_convert_exactly() -> None:
    assert to_minor("128.28", "USD") == 12828
    assert to_minor("1.234", "BHD") == 1234
    assert to_minor("500", "JPY") == 500


def test_more_decimals_than_the_currency_allows_is_refused() -> None:
    with pytest.raises(AmountPrecisionError, match="JPY"):
        to_minor("1.5", "JPY")


def test_half_cents_round_to_even_once() -> None:
    assert [round_minor(Decimal(v)) for v in ("0.5", "1.5", "2.5", "-0.5")] == [
        0,
        2,
        2,
        0,
    ]


def test_amounts_are_never_added_across_currencies() -> None:
    with pytest.raises(ValueError, match="without a rate"):
        _ = Money(amount_minor=1, currency="EUR") + Money(
            amount_minor=1, currency="USD"
        )


def test_float_amounts_are_rejected_even_when_integral() -> None:
    with pytest.raises(ValidationError):
        Money.model_validate_json(b'{"amount_minor": 256.0, "currency": "EUR"}')


def test_amounts_render_with_their_exponent() -> None:
    assert format_amount(123456, "EUR") == "1,234.56 EUR"
    assert format_amount(1234, "JPY") == "1,234 JPY"
