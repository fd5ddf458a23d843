"""Importing an AR export: rows to canonical events, in batches, through the ledger.

Two passes over the file: the first finds each customer's first invoice date (kept
per customer, not per row), the second sends each batch of rows through
``accept_many`` in its own transaction. A batch is durable once its transaction
commits; an import cut short is finished by importing the same file again, since
event ids are stable and what was committed comes back as duplicates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from arbor_ingest import handlers
from arbor_ingest.adapters.import_store import known_customers
from arbor_ingest.domain.ar_events import CustomerSeed, customer_created, row_events
from arbor_ingest.domain.csv_import import (
    ArCsvMapping,
    ArRow,
    RejectedRow,
    read_rows,
)
from arbor_shared.events import EventData
from arbor_shared.kafka.outbox import Outbox

logger = logging.getLogger(__name__)

DEFAULT_BATCH_ROWS = 500

T = TypeVar("T")

LineSource = Callable[[], Iterable[str]]
"""Opens the file afresh each time it is called; the import reads it twice."""

_KINDS = {
    "InvoiceIssued": "invoices",
    "PaymentReceived": "payments",
    "CustomerCreated": "customers",
    "DisputeOpened": "disputes",
}


@dataclass
class ImportSummary:
    """Rows read, new events accepted by kind, duplicates, and every rejected row."""

    rows: int = 0
    invoices: int = 0
    payments: int = 0
    customers: int = 0
    disputes: int = 0
    duplicates: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)


def survey(lines: Iterable[str], mapping: ArCsvMapping) -> dict[str, CustomerSeed]:
    """Each customer's first invoice date and country code, in one streaming pass."""
    seeds: dict[str, CustomerSeed] = {}
    for row in read_rows(lines, mapping):
        if not isinstance(row, ArRow):
            continue
        seed = seeds.get(row.customer_id)
        if seed is None or row.issue_date < seed.first_issue_date:
            seeds[row.customer_id] = CustomerSeed(
                customer_id=row.customer_id,
                first_issue_date=row.issue_date,
                country_code=seed.country_code if seed else row.country_code,
                currency=row.currency,
            )
    return seeds


async def import_ar_csv(
    sessions: async_sessionmaker[AsyncSession],
    outbox: Outbox,
    source: LineSource,
    mapping: ArCsvMapping,
    *,
    publisher: str,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    first_line: int = 2,
    progress: Callable[[ImportSummary], None] | None = None,
) -> ImportSummary:
    """Import every row of the export; bad rows are reported with their line."""
    # The survey is pure CPU over the whole file: off the event loop, so that other
    # requests are served meanwhile.
    seeds = await asyncio.to_thread(survey, source(), mapping)
    summary = ImportSummary()
    rows = read_rows(source(), mapping)
    offset = first_line - 2
    for batch in _batched(rows, batch_rows):
        _count_read(summary, batch, offset=offset)
        valid = [row for row in batch if isinstance(row, ArRow)]
        async with sessions() as session, session.begin():
            results = await _accept(session, outbox, valid, seeds, mapping, publisher)
        _count_accepted(summary, results, offset=offset)
        if progress is not None:
            progress(summary)
    logger.info(
        "ar-csv import by %s: %d rows, %d invoices, %d payments, %d customers, "
        "%d duplicates, %d rejected",
        publisher,
        summary.rows,
        summary.invoices,
        summary.payments,
        summary.customers,
        summary.duplicates,
        len(summary.rejected),
    )
    return summary


def _count_read(
    summary: ImportSummary, batch: tuple[ArRow | RejectedRow, ...], *, offset: int
) -> None:
    summary.rows += len(batch)
    summary.rejected += [
        RejectedRow(row.line + offset, row.reason)
        for row in batch
        if isinstance(row, RejectedRow)
    ]


async def _accept(
    session: AsyncSession,
    outbox: Outbox,
    rows: list[ArRow],
    seeds: dict[str, CustomerSeed],
    mapping: ArCsvMapping,
    publisher: str,
) -> list[tuple[EventData, int, handlers.Acceptance]]:
    known = await known_customers(session, {row.customer_id for row in rows})
    items: list[tuple[str, EventData]] = []
    lines: list[int] = []
    for row in rows:
        if row.customer_id not in known:
            known.add(row.customer_id)
            items.append(customer_created(seeds[row.customer_id], mapping))
            lines.append(row.line)
        events = row_events(row, mapping)
        items += events
        lines += [row.line] * len(events)

    results = await handlers.accept_many(session, outbox, items, publisher=publisher)
    return [
        (data, line, result)
        for (_, data), line, result in zip(items, lines, results, strict=True)
    ]


def _count_accepted(
    summary: ImportSummary,
    results: list[tuple[EventData, int, handlers.Acceptance]],
    *,
    offset: int,
) -> None:
    for data, line, result in results:
        if result.status == "duplicate":
            summary.duplicates += 1
        elif result.status == "rejected":
            reason = f"{data.event_type} {result.field}: {result.reason}"
            summary.rejected.append(RejectedRow(line + offset, reason))
        elif kind := _KINDS.get(data.event_type):
            setattr(summary, kind, getattr(summary, kind) + 1)


def _batched(items: Iterable[T], size: int) -> Iterator[tuple[T, ...]]:
    iterator = iter(items)
    while batch := tuple(islice(iterator, size)):
        yield batch
