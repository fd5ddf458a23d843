"""Reading the stored facts back as domain objects, one currency at a time."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_metrics.adapters.tables import (
    cohort_memberships,
    invoice_facts,
    progress,
    promise_events,
    reminders,
)
from arbor_metrics.domain.facts import (
    CohortHistory,
    Facts,
    Invoice,
    Membership,
    Promise,
    Reminder,
    Snapshot,
    sort_snapshots,
)


async def load_facts(session: AsyncSession, *, currency: str) -> Facts:
    """Every fact the KPIs of ``currency`` need, in one read transaction."""
    invoices = await _invoices(session, currency)
    return Facts(
        invoices=invoices,
        cohorts=await load_cohorts(session),
        reminders=await _reminders(session, currency),
        promises=await _promises(session),
    )


class FactsCache:
    """Facts per currency, reused until a consumer batch commits new ones.

    Loading every fact of a currency is the expensive part of a KPI read; dashboards
    and series ask many times between two batches, and time-based KPIs need only a
    new computation, not a new load.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[int, Facts]] = {}

    async def get(self, session: AsyncSession, *, currency: str) -> Facts:
        """The facts of ``currency`` as of the newest committed batch."""
        # Read the counter first: facts newer than it only cause an extra reload.
        version = await session.scalar(sa.select(progress.c.applied_batches)) or 0
        cached = self._entries.get(currency)
        if cached is not None and cached[0] == version:
            return cached[1]
        facts = await load_facts(session, currency=currency)
        self._entries[currency] = (version, facts)
        return facts


async def list_currencies(session: AsyncSession) -> list[str]:
    query = sa.select(invoice_facts.c.currency).distinct()
    return sorted((await session.scalars(query)).all())


async def last_event_time(session: AsyncSession) -> datetime | None:
    found: datetime | None = await session.scalar(sa.select(progress.c.last_event_time))
    return found


async def load_cohorts(
    session: AsyncSession, *, customer_id: str | None = None
) -> CohortHistory:
    query = sa.select(cohort_memberships)
    if customer_id is not None:
        query = query.where(cohort_memberships.c.customer_id == customer_id)
    rows = (await session.execute(query)).all()
    return CohortHistory(
        Membership(r.customer_id, r.version, r.to_cohort, r.changed_at) for r in rows
    )


_SNAPSHOTS_SQL = (
    "SELECT s.* FROM invoice_snapshots s JOIN invoice_facts f USING (invoice_id) "
    "WHERE f.currency = $1"
)
_INVOICES_SQL = "SELECT * FROM invoice_facts WHERE currency = $1"


async def _invoices(session: AsyncSession, currency: str) -> tuple[Invoice, ...]:
    # asyncpg decodes rows in C; SQLAlchemy's row processing of a few hundred
    # thousand rows would hold the event loop, and the consumer on it, for seconds.
    # Same connection, so same transaction as the rest of the read.
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    snapshot_rows = await driver.fetch(_SNAPSHOTS_SQL, currency)
    invoice_rows = await driver.fetch(_INVOICES_SQL, currency)
    return await asyncio.to_thread(_assemble, invoice_rows, snapshot_rows)


def _assemble(
    invoice_rows: Sequence[Any], snapshot_rows: Sequence[Any]
) -> tuple[Invoice, ...]:
    snapshots: dict[str, list[Snapshot]] = defaultdict(list)
    for row in snapshot_rows:
        snapshots[row["invoice_id"]].append(_snapshot(row))
    return tuple(
        Invoice(
            invoice_id=r["invoice_id"],
            customer_id=r["customer_id"],
            currency=r["currency"],
            issue_date=r["issue_date"],
            due_date=r["due_date"],
            amount_minor=r["amount_minor"],
            snapshots=sort_snapshots(snapshots.get(r["invoice_id"], ())),
        )
        for r in invoice_rows
    )


def _snapshot(row: Any) -> Snapshot:
    return Snapshot(
        kind=row["kind"],
        at=row["at"],
        effective=row["effective"],
        cause=row["cause"],
        balance_minor=row["balance_minor"],
        status=row["status"],
        amount_minor=row["amount_minor"],
        paid_minor=row["paid_minor"],
        credited_minor=row["credited_minor"],
        written_off_minor=row["written_off_minor"],
        settled_date=row["settled_date"],
        settled_by=row["settled_by"],
    )


async def _reminders(session: AsyncSession, currency: str) -> tuple[Reminder, ...]:
    rows = await session.execute(
        sa.select(reminders).where(reminders.c.currency == currency)
    )
    return tuple(
        Reminder(
            r.invoice_id, r.step, r.sent_at, r.balance_minor, r.policy_id, r.variant
        )
        for r in rows
    )


async def _promises(session: AsyncSession) -> tuple[Promise, ...]:
    parts: dict[str, dict[str, Any]] = defaultdict(dict)
    for row in (await session.execute(sa.select(promise_events))).mappings():
        part = parts[row["promise_id"]]
        part["invoice_id"] = row["invoice_id"]
        if row["promised_date"] is not None:
            part.setdefault("promised_date", row["promised_date"])
        if row["kind"] == "made":
            part["promised_date"] = row["promised_date"]
        part[row["kind"]] = row["at"].date()
    return tuple(
        Promise(
            promise_id=promise_id,
            invoice_id=part.get("invoice_id"),
            promised_date=part.get("promised_date"),
            kept_on=part.get("kept"),
            broken_on=part.get("broken"),
        )
        for promise_id, part in sorted(parts.items())
    )
