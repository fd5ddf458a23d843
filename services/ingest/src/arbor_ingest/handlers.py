"""Ingest's reactions: accept a canonical event and keep the ledger in step."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_ingest.adapters.tables import accepted_events, invoices
from arbor_ingest.domain.errors import DuplicateEventError
from arbor_ingest.domain.ledger import InvoiceState, apply_payment
from arbor_shared.events import (
    Envelope,
    EventData,
    InvoiceBalanceChanged,
    InvoiceIssued,
    InvoiceSettled,
    PaymentReceived,
)
from arbor_shared.failpoints import failpoint
from arbor_shared.kafka.outbox import Outbox


@dataclass(frozen=True)
class Acceptance:
    event_id: str
    status: Literal["accepted", "duplicate"]


async def accept_event(
    session: AsyncSession,
    outbox: Outbox,
    data: EventData,
    *,
    event_id: str,
    body: bytes,
) -> Acceptance:
    """Store the event durably with its ledger effects; repeat calls are no-ops."""
    digest = hashlib.sha256(body).hexdigest()
    if not await _record_once(session, data, event_id, digest):
        return Acceptance(event_id, "duplicate")
    envelope = await outbox.publish(session, data, event_id=event_id)
    await apply_to_ledger(session, outbox, envelope, data)
    failpoint("ingest_before_commit")
    return Acceptance(event_id, "accepted")


async def _record_once(
    session: AsyncSession, data: EventData, event_id: str, digest: str
) -> bool:
    inserted = await session.scalar(
        insert(accepted_events)
        .values(
            event_id=event_id,
            event_type=data.event_type,
            customer_id=data.customer_id,
            body_sha256=digest,
        )
        .on_conflict_do_nothing()
        .returning(accepted_events.c.event_id)
    )
    if inserted is not None:
        return True
    earlier = await session.scalar(
        sa.select(accepted_events.c.body_sha256).where(
            accepted_events.c.event_id == event_id
        )
    )
    if earlier != digest:
        raise DuplicateEventError(
            f"event id {event_id} was already accepted with a different body"
        )
    return False


async def apply_to_ledger(
    session: AsyncSession, outbox: Outbox, envelope: Envelope, data: EventData
) -> None:
    """Move balances for the events that change them and publish the facts."""
    if isinstance(data, InvoiceIssued):
        await _issue(session, outbox, envelope, data)
    elif isinstance(data, PaymentReceived):
        await _receive(session, outbox, envelope, data)


async def _issue(
    session: AsyncSession, outbox: Outbox, envelope: Envelope, event: InvoiceIssued
) -> None:
    state = InvoiceState(
        invoice_id=event.invoice_id,
        customer_id=event.customer_id,
        currency=event.currency,
        amount_minor=event.amount_minor,
        issue_date=event.issue_date,
        due_date=event.due_date,
    )
    await session.execute(insert(invoices).values(**_row(state)))
    await _publish_facts(outbox, session, envelope, None, state, event.issued_at)


async def _receive(
    session: AsyncSession, outbox: Outbox, envelope: Envelope, event: PaymentReceived
) -> None:
    for allocation in event.allocations:
        before = await _load(session, allocation.invoice_id)
        if before is None:
            continue
        after, _left = apply_payment(before, allocation.amount_minor, event.received_at)
        await session.execute(
            sa.update(invoices)
            .where(invoices.c.invoice_id == after.invoice_id)
            .values(**_row(after))
        )
        await _publish_facts(
            outbox, session, envelope, before, after, event.received_at
        )


async def _load(session: AsyncSession, invoice_id: str) -> InvoiceState | None:
    row = (
        await session.execute(
            sa.select(invoices)
            .where(invoices.c.invoice_id == invoice_id)
            .with_for_update()
        )
    ).one_or_none()
    return InvoiceState(**row._mapping) if row else None


def _row(state: InvoiceState) -> dict[str, object]:
    return {column.name: getattr(state, column.name) for column in invoices.c}


async def _publish_facts(
    outbox: Outbox,
    session: AsyncSession,
    envelope: Envelope,
    before: InvoiceState | None,
    after: InvoiceState,
    at: datetime,
) -> None:
    common: dict[str, Any] = {
        "customer_id": after.customer_id,
        "invoice_id": after.invoice_id,
        "currency": after.currency,
        "issue_date": after.issue_date,
        "due_date": after.due_date,
        "amount_minor": after.amount_minor,
        "paid_minor": after.paid_minor,
        "credited_minor": after.credited_minor,
        "written_off_minor": after.written_off_minor,
    }
    changed = InvoiceBalanceChanged(
        **common,
        balance_minor=after.balance_minor,
        status=after.status,  # type: ignore[arg-type]
        cause_event_id=envelope.id,
        cause_event_type=envelope.type,
        changed_at=at,
    )
    await outbox.publish(session, changed, causation_id=envelope.id)
    newly_settled = after.settled_at is not None and (
        before is None or before.settled_at is None
    )
    if newly_settled:
        assert after.settled_at is not None
        settled = InvoiceSettled(
            **common,
            settled_by="payment",
            settled_at=after.settled_at,
            settled_date=after.settled_at.date(),
        )
        await outbox.publish(session, settled, causation_id=envelope.id)
