"""Money as integer minor units with an ISO 4217 currency.

Display tables disagree on some exponents (HUF, ISK, IDR...), so the exponent always
comes from ISO 4217 itself, and nothing here ever uses ``float``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StrictInt

# ISO 4217 active codes and their minor-unit exponents (list one, 2025 amendment).
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN "
        "BWP BYN BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR "
        "FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES "
        "KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR "
        "MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON "
        "RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS "
        "TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VES WST XCD YER ZAR ZMW ZWG".split(),
        2,
    ),
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}

# The one rounding rule: banker's rounding, applied once, where a fraction of a minor
# unit first appears (a percentage fee, a discount), never again downstream.
ROUNDING = ROUND_HALF_EVEN


class UnknownCurrencyError(ValueError):
    """The code is not an active ISO 4217 currency."""


class AmountPrecisionError(ValueError):
    """The amount has more decimal places than its currency allows."""


def currency_exponent(currency: str) -> int:
    """Return the ISO 4217 minor-unit exponent of ``currency``."""
    try:
        return _EXPONENTS[currency]
    except KeyError:
        raise UnknownCurrencyError(
            f"{currency!r} is not an active ISO 4217 currency code"
        ) from None


def _check_currency(code: str) -> str:
    currency_exponent(code)
    return code


Currency = Annotated[str, AfterValidator(_check_currency)]
"""A validated ISO 4217 code, for use in event and request models."""


def to_minor(amount: str | Decimal, currency: str) -> int:
    """Convert a decimal major-unit amount to minor units, refusing lost precision."""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise ValueError(f"{amount!r} is not a decimal amount") from None
    scaled = value.scaleb(currency_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise AmountPrecisionError(
            f"{amount} has more decimals than {currency} allows "
            f"({currency_exponent(currency)})"
        )
    return int(scaled)


def round_minor(value: Decimal) -> int:
    """Round a fractional minor-unit amount with the ledger's single rounding rule."""
    return int(value.quantize(Decimal(1), rounding=ROUNDING))


def format_amount(amount_minor: int, currency: str) -> str:
    """Render minor units as a plain decimal string with the currency code."""
    exponent = currency_exponent(currency)
    major = Decimal(amount_minor).scaleb(-exponent)
    return f"{major:,.{exponent}f} {currency}"


class Money(BaseModel):
    """An amount in integer minor units of one currency."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    amount_minor: StrictInt
    currency: Currency

    def __add__(self, other: Money) -> Money:
        self._require_same_currency(other)
        return Money(
            amount_minor=self.amount_minor + other.amount_minor, currency=self.currency
        )

    def __sub__(self, other: Money) -> Money:
        self._require_same_currency(other)
        return Money(
            amount_minor=self.amount_minor - other.amount_minor, currency=self.currency
        )

    def _require_same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(
                f"cannot combine {self.currency} and {other.currency} without a rate"
            )
