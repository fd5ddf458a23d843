"""What one AR export row means in canonical events, with ids that never change.

Per row: ``InvoiceIssued``; with a settled date, a ``PaymentReceived`` allocated in
full to it on that date; when flagged disputed, a ``DisputeOpened`` on the issue
date and, once settled, a ``DisputeResolved`` on the settled date with outcome
``won`` (the export says the invoice was paid in full, so the debt stood). A
``CustomerCreated`` precedes a customer's first invoice when ingest has no customer
by that id yet.

Exports carry dates, not moments: every moment is 12:00 in the customer's time zone
on that date, which is the same calendar date in UTC for every zone within ±12 h.

Event ids are UUIDv5 of the invoice (or customer) id and the event's role, so the
same file imported twice produces the same ids and only duplicates the second time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from arbor_ingest.domain.csv_import import ArCsvMapping, ArRow, CountryMapping
from arbor_shared.events import (
    Allocation,
    CustomerCreated,
    DisputeOpened,
    DisputeResolved,
    EventData,
    InvoiceIssued,
    PaymentReceived,
)

NAMESPACE = uuid.UUID("6f0b7c1e-3d52-5b8e-9a4c-2e1f0d9c8b7a")
_NOON = time(12)


@dataclass(frozen=True)
class CustomerSeed:
    """What the import knows of a customer: the first invoice date and country code."""

    customer_id: str
    first_issue_date: date
    country_code: str | None
    currency: str


def event_id(role: str, key: str) -> str:
    """The stable event id of ``role`` (invoice, payment...) for ``key``."""
    return str(uuid.uuid5(NAMESPACE, f"ar-csv/{role}/{key}"))


def place(code: str | None, mapping: ArCsvMapping) -> CountryMapping:
    """The country, region and zone for a country code; unknown codes keep defaults.

    An unmapped code is kept as the region name, so segmentation can still tell
    customers apart by it.
    """
    if code is not None and code in mapping.countries:
        return mapping.countries[code]
    return CountryMapping(
        country=mapping.default_country,
        region=code[:64] if code else None,
        time_zone=mapping.default_time_zone,
    )


def customer_created(
    seed: CustomerSeed, mapping: ArCsvMapping
) -> tuple[str, EventData]:
    """A customer the export names; it starts on its first invoice in the upload.

    The export has no start date. When a file arrives in several uploads, the
    customer starts on its earliest invoice in the first upload naming it.
    """
    where = place(seed.country_code, mapping)
    data = CustomerCreated(
        customer_id=seed.customer_id,
        name=seed.customer_id,
        country=where.country,
        region=where.region,
        time_zone=where.time_zone,
        currency=seed.currency,
        started_on=seed.first_issue_date,
    )
    return event_id("customer", seed.customer_id), data


def row_events(row: ArRow, mapping: ArCsvMapping) -> list[tuple[str, EventData]]:
    """The invoice, payment and dispute events of one row, in order of time."""
    zone = ZoneInfo(place(row.country_code, mapping).time_zone)
    issued_at = datetime.combine(row.issue_date, _NOON, zone)
    events: list[tuple[str, EventData]] = [
        (
            event_id("invoice", row.invoice_id),
            InvoiceIssued(
                customer_id=row.customer_id,
                invoice_id=row.invoice_id,
                number=row.number,
                currency=row.currency,
                amount_minor=row.amount_minor,
                issue_date=row.issue_date,
                due_date=row.due_date,
                issued_at=issued_at,
            ),
        )
    ]
    if row.disputed:
        events.append(_dispute_opened(row, issued_at))
    if row.settled_date is None:
        return events
    settled_at = datetime.combine(row.settled_date, _NOON, zone)
    if row.amount_minor > 0:
        events.append(_payment(row, settled_at))
    if row.disputed:
        resolved = DisputeResolved(
            customer_id=row.customer_id,
            invoice_id=row.invoice_id,
            dispute_id=f"{row.invoice_id}.dispute",
            outcome="won",
            resolved_at=settled_at,
        )
        events.append((event_id("dispute-resolved", row.invoice_id), resolved))
    return events


def _payment(row: ArRow, settled_at: datetime) -> tuple[str, EventData]:
    data = PaymentReceived(
        customer_id=row.customer_id,
        payment_id=f"{row.invoice_id}.settlement",
        currency=row.currency,
        amount_minor=row.amount_minor,
        received_at=settled_at,
        allocations=(
            Allocation(invoice_id=row.invoice_id, amount_minor=row.amount_minor),
        ),
    )
    return event_id("payment", row.invoice_id), data


def _dispute_opened(row: ArRow, issued_at: datetime) -> tuple[str, EventData]:
    data = DisputeOpened(
        customer_id=row.customer_id,
        dispute_id=f"{row.invoice_id}.dispute",
        invoice_id=row.invoice_id,
        currency=row.currency,
        amount_minor=row.amount_minor,
        reason="marked disputed in the ledger export",
        origin="internal",
        opened_at=issued_at,
    )
    return event_id("dispute-opened", row.invoice_id), data
