"""Past invoices for back-testing, from an accounts-receivable CSV or events."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from arbor_dunning.domain.calendar import Locale, start_of_day
from arbor_dunning.domain.errors import InvalidSimulationInputError
from arbor_dunning.domain.simulation import PastInvoice
from arbor_shared.events import (
    CustomerCreated,
    CustomerUpdated,
    InvoiceIssued,
    InvoiceSettled,
    UnknownEventTypeError,
    model_for,
)
from arbor_shared.money import to_minor

_CSV_COLUMNS = ("customerID", "invoiceNumber", "DueDate", "InvoiceAmount")
HISTORY_TYPES = frozenset(
    model.event_type
    for model in (CustomerCreated, CustomerUpdated, InvoiceIssued, InvoiceSettled)
)


def from_csv(text: str, *, currency: str, locale: Locale) -> list[PastInvoice]:
    """Rows like the IBM accounts-receivable sample; settled at the local day's start.

    The sample has no time of payment, so a payment is taken to arrive when its day
    begins: a reminder planned for that day counts as not sent.
    """
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in _CSV_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise InvalidSimulationInputError(f"CSV lacks columns {missing}")
    return [_row(n, row, currency, locale) for n, row in enumerate(reader, start=2)]


def _row(n: int, row: Mapping[str, str], currency: str, locale: Locale) -> PastInvoice:
    try:
        settled = row.get("SettledDate") or ""
        return PastInvoice(
            customer_id=row["customerID"],
            invoice_id=row["invoiceNumber"],
            currency=currency,
            amount_minor=to_minor(row["InvoiceAmount"], currency),
            due_date=_us_date(row["DueDate"]),
            settled_at=start_of_day(_us_date(settled), locale) if settled else None,
            locale=locale,
        )
    except (ValueError, KeyError) as exc:
        raise InvalidSimulationInputError(f"CSV line {n}: {exc}") from exc


def _us_date(text: str) -> date:
    return datetime.strptime(text.strip(), "%m/%d/%Y").date()  # noqa: DTZ007


def from_events(
    events: Sequence[Mapping[str, Any]], *, default_locale: Locale
) -> list[PastInvoice]:
    """Canonical events (``{"type": ..., "data": {...}}``) to past invoices."""
    decoded = [_event(n, item) for n, item in enumerate(events)]
    return past_invoices(decoded, default_locale=default_locale)


def past_invoices(
    events: Iterable[object], *, default_locale: Locale
) -> list[PastInvoice]:
    """The invoices the events issued, in their customers' zones, with settlements.

    Only the types in ``HISTORY_TYPES`` shape the result; any other is ignored.
    """
    locales: dict[str, Locale] = {}
    issued: dict[str, InvoiceIssued] = {}
    settled: dict[str, datetime] = {}
    for data in events:
        if isinstance(data, CustomerCreated | CustomerUpdated):
            locales[data.customer_id] = Locale(data.time_zone, data.country)
        elif isinstance(data, InvoiceIssued):
            issued[data.invoice_id] = data
        elif isinstance(data, InvoiceSettled):
            settled[data.invoice_id] = data.settled_at
    return [
        PastInvoice(
            customer_id=i.customer_id,
            invoice_id=i.invoice_id,
            currency=i.currency,
            amount_minor=i.amount_minor,
            due_date=i.due_date,
            settled_at=settled.get(i.invoice_id),
            locale=locales.get(i.customer_id, default_locale),
        )
        for i in issued.values()
    ]


def _event(n: int, item: Mapping[str, Any]) -> object:
    try:
        model = model_for(str(item.get("type")))
        return model.model_validate(item.get("data"), strict=False)
    except (UnknownEventTypeError, ValidationError) as exc:
        raise InvalidSimulationInputError(f"events[{n}]: {exc}") from exc


def horizon(invoices: Sequence[PastInvoice]) -> datetime:
    """Far enough past the last due date for every step of every invoice."""
    last = max((i.due_date for i in invoices), default=date(1970, 1, 1))
    return start_of_day(last + timedelta(days=400), Locale("UTC", "US"))
