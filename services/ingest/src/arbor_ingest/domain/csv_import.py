"""Accounts-receivable exports as CSV: the column mapping and row parsing.

One row is one invoice. Rows are read as a stream; what is kept between rows is the
set of invoice ids already seen (to refuse a repeated one with both line numbers)
and nothing else. Line numbers are physical lines of the file, header = 1, so a
field with an embedded newline does not shift the numbers that follow.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from arbor_ingest.domain.errors import IngestError
from arbor_shared.money import Currency, UnknownCurrencyError, to_minor

_IDENTIFIER = re.compile(r"^[\w.:\-]{1,128}$")


def _iana(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone") from None
    return name


TimeZone = Annotated[str, Field(min_length=1), AfterValidator(_iana)]


class CsvImportError(IngestError):
    """The file as a whole cannot be imported (its header); the message says why."""


class CountryMapping(BaseModel):
    """Where customers with one country code live; codes need not be ISO."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    region: str | None = Field(default=None, max_length=64)
    time_zone: TimeZone


class ArCsvMapping(BaseModel):
    """Which column holds what, how dates and flags are written, and the defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customer_id: str = Field(description="column with the customer id")
    invoice_id: str = Field(description="column with the invoice number")
    issue_date: str
    due_date: str
    amount: str = Field(description="column with the amount in major units")
    settled_date: str | None = None
    disputed: str | None = None
    country_code: str | None = None
    currency_column: str | None = None
    currency: Currency | None = Field(
        default=None, description="the currency of every row when no column has one"
    )
    date_format: str = Field(default="%Y-%m-%d", description="strptime format")
    disputed_values: frozenset[str] = frozenset({"yes", "y", "true", "1"})
    undisputed_values: frozenset[str] = frozenset({"no", "n", "false", "0", ""})
    countries: dict[str, CountryMapping] = {}
    default_country: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    default_time_zone: TimeZone = "UTC"
    id_prefix: str = Field(
        default="",
        pattern=r"^[\w.:\-]{0,32}$",
        description="prepended to invoice ids (and the payment and dispute ids made "
        "from them) so that two ledgers' invoice numbers cannot collide",
    )

    @model_validator(mode="after")
    def _has_a_currency(self) -> ArCsvMapping:
        if self.currency is None and self.currency_column is None:
            raise ValueError("give either currency or currency_column")
        return self

    def required_columns(self) -> list[str]:
        columns = [self.customer_id, self.invoice_id, self.issue_date, self.due_date]
        optional = [self.settled_date, self.disputed, self.country_code]
        optional.append(self.currency_column)
        return [self.amount, *columns, *(c for c in optional if c is not None)]


@dataclass(frozen=True)
class ArRow:
    """One valid invoice row, in canonical terms."""

    line: int
    customer_id: str
    invoice_id: str
    number: str
    issue_date: date
    due_date: date
    settled_date: date | None
    currency: str
    amount_minor: int
    disputed: bool
    country_code: str | None


@dataclass(frozen=True)
class RejectedRow:
    line: int
    reason: str


class _RowError(ValueError):
    pass


def read_rows(
    lines: Iterable[str], mapping: ArCsvMapping
) -> Iterator[ArRow | RejectedRow]:
    """Parse the export row by row; a bad row is reported, never raised."""
    reader = csv.reader(iter(lines))
    header = _header(next(reader, None), mapping)
    seen: dict[str, int] = {}
    end = reader.line_num
    for cells in reader:
        start, end = end + 1, reader.line_num
        if not cells or all(not cell.strip() for cell in cells):
            continue
        try:
            row = _row(start, cells, header, mapping)
        except _RowError as exc:
            yield RejectedRow(start, str(exc))
            continue
        if (first := seen.setdefault(row.invoice_id, start)) != start:
            yield RejectedRow(start, f"invoice {row.number} repeats line {first}")
            continue
        yield row


def _header(cells: list[str] | None, mapping: ArCsvMapping) -> dict[str, int]:
    if cells is None:
        raise CsvImportError("line 1: the file is empty; a header row is required")
    header = {name.strip().lstrip("\ufeff"): n for n, name in enumerate(cells)}
    missing = [c for c in mapping.required_columns() if c not in header]
    if missing:
        raise CsvImportError(
            f"line 1: missing column(s) {', '.join(map(repr, missing))}; "
            f"the header has {', '.join(map(repr, header))}"
        )
    return header


def _row(
    line: int, cells: list[str], header: dict[str, int], mapping: ArCsvMapping
) -> ArRow:
    if len(cells) != len(header):
        raise _RowError(f"expected {len(header)} fields, found {len(cells)}")

    def cell(column: str | None) -> str:
        return cells[header[column]].strip() if column is not None else ""

    issue = _date(cell(mapping.issue_date), mapping.issue_date, mapping)
    due = _date(cell(mapping.due_date), mapping.due_date, mapping)
    if due < issue:
        raise _RowError(f"{mapping.due_date} {due} is before {mapping.issue_date}")
    settled_text = cell(mapping.settled_date)
    settled = None
    if settled_text:
        settled = _date(settled_text, str(mapping.settled_date), mapping)

    currency = cell(mapping.currency_column).upper() or mapping.currency or ""
    number = cell(mapping.invoice_id)
    return ArRow(
        line=line,
        customer_id=_identifier(cell(mapping.customer_id), mapping.customer_id, ""),
        invoice_id=_identifier(number, mapping.invoice_id, mapping.id_prefix),
        number=number[:64],
        issue_date=issue,
        due_date=due,
        settled_date=settled,
        currency=currency,
        amount_minor=_amount(cell(mapping.amount), currency, mapping.amount),
        disputed=_flag(cell(mapping.disputed), str(mapping.disputed), mapping),
        country_code=cell(mapping.country_code) or None,
    )


def _date(text: str, column: str, mapping: ArCsvMapping) -> date:
    try:
        # A calendar date in the customer's zone: no instant, so no offset to lose.
        return datetime.strptime(text, mapping.date_format).date()  # noqa: DTZ007
    except ValueError:
        raise _RowError(
            f"{column} {text!r} is not a date in the format {mapping.date_format}"
        ) from None


def _identifier(text: str, column: str, prefix: str) -> str:
    value = prefix + text
    if not _IDENTIFIER.match(value):
        raise _RowError(
            f"{column} {text!r} must be 1-128 letters, digits or _ . : - characters"
        )
    return value


def _amount(text: str, currency: str, column: str) -> int:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _RowError(f"{column} {text!r} is not a decimal amount") from None
    if not value.is_finite():
        raise _RowError(f"{column} {text!r} is not a decimal amount")
    if value < 0:
        raise _RowError(f"{column} {text} is negative; a credit is not an invoice")
    try:
        return to_minor(value, currency)
    except UnknownCurrencyError:
        raise _RowError(f"currency {currency!r} is not an ISO 4217 code") from None
    except ValueError as exc:
        raise _RowError(f"{column} {exc}") from None


def _flag(text: str, column: str, mapping: ArCsvMapping) -> bool:
    value = text.lower()
    if value in mapping.disputed_values:
        return True
    if value in mapping.undisputed_values:
        return False
    raise _RowError(f"{column} {text!r} is neither a yes nor a no value")
