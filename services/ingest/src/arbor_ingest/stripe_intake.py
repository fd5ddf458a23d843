"""Receiving one verified Stripe event: map it, accept its events, remember it."""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_ingest import handlers
from arbor_ingest.adapters.stripe_tables import stripe_bookings, stripe_events
from arbor_ingest.domain.stripe import StripeEvent, StripePayloadError
from arbor_ingest.domain.stripe_mapping import (
    MAPPERS,
    REASONS,
    lookup_keys,
    map_event,
)
from arbor_ingest.domain.stripe_objects import (
    Booking,
    Ignored,
    Mapped,
    StripeDefaults,
)
from arbor_shared.kafka.outbox import Outbox

logger = logging.getLogger(__name__)

PUBLISHER = "stripe"

Status = Literal["accepted", "duplicate", "ignored", "rejected"]


@dataclass(frozen=True)
class WebhookResult:
    status: Status
    reason: str | None = None
    event_ids: tuple[str, ...] = ()


async def receive_stripe_event(
    session: AsyncSession,
    outbox: Outbox,
    event: StripeEvent,
    defaults: StripeDefaults,
) -> WebhookResult:
    """Book ``event`` once; a redelivery gets the first delivery's answer."""
    earlier = await _earlier_outcome(session, event.id)
    if earlier is not None:
        return earlier
    bookings = await _bookings(session, lookup_keys(event))
    try:
        outcome = map_event(event, bookings, defaults)
    except StripePayloadError as exc:
        logger.warning("stripe event %s (%s) rejected: %s", event.id, event.type, exc)
        return await _record(session, event, WebhookResult("rejected", str(exc)))
    if isinstance(outcome, Ignored):
        logger.info(
            "stripe event %s (%s) ignored: %s", event.id, event.type, outcome.reason
        )
        return await _record(session, event, WebhookResult("ignored", outcome.reason))
    return await _accept(session, outbox, event, outcome)


async def _accept(
    session: AsyncSession, outbox: Outbox, event: StripeEvent, outcome: Mapped
) -> WebhookResult:
    results = await handlers.accept_many(
        session, outbox, outcome.events, publisher=PUBLISHER
    )
    ids = tuple(r.event_id for r in results)
    refused = [r for r in results if r.status == "rejected"]
    if refused:
        reason = "; ".join(f"{r.field}: {r.reason}" for r in refused)
        logger.warning("stripe event %s (%s) refused: %s", event.id, event.type, reason)
        return await _record(session, event, WebhookResult("rejected", reason, ids))
    await _remember(session, outcome.bookings)
    status: Status = "accepted"
    if all(r.status == "duplicate" for r in results):
        status = "duplicate"
    logger.debug("stripe event %s (%s) %s as %s", event.id, event.type, status, ids)
    return await _record(session, event, WebhookResult(status, None, ids))


async def _earlier_outcome(
    session: AsyncSession, event_id: str
) -> WebhookResult | None:
    row = (
        await session.execute(
            # A rejection is not final: the same delivery is mapped again, so a
            # fix to the mapping takes effect on Stripe's next retry.
            sa.select(stripe_events.c.outcome, stripe_events.c.reason).where(
                stripe_events.c.event_id == event_id,
                stripe_events.c.outcome != "rejected",
            )
        )
    ).one_or_none()
    if row is None:
        return None
    status: Status = "duplicate" if row.outcome == "accepted" else row.outcome
    return WebhookResult(status, row.reason)


async def _bookings(session: AsyncSession, keys: list[str]) -> dict[str, Booking]:
    if not keys:
        return {}
    rows = await session.execute(
        sa.select(stripe_bookings).where(stripe_bookings.c.key.in_(keys))
    )
    return {
        row.key: Booking(
            key=row.key,
            customer_id=row.customer_id,
            stripe_event_id=row.stripe_event_id,
            invoice_id=row.invoice_id,
            payment_id=row.payment_id,
        )
        for row in rows
    }


async def _remember(session: AsyncSession, bookings: tuple[Booking, ...]) -> None:
    if not bookings:
        return
    rows = [
        {
            "key": b.key,
            "customer_id": b.customer_id,
            "invoice_id": b.invoice_id,
            "payment_id": b.payment_id,
            "stripe_event_id": b.stripe_event_id,
        }
        for b in bookings
    ]
    await session.execute(insert(stripe_bookings).on_conflict_do_nothing(), rows)


async def _record(
    session: AsyncSession, event: StripeEvent, result: WebhookResult
) -> WebhookResult:
    statement = insert(stripe_events).values(
        event_id=event.id,
        event_type=event.type,
        outcome=result.status,
        reason=result.reason,
        livemode=event.livemode,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[stripe_events.c.event_id],
            set_={
                "outcome": statement.excluded.outcome,
                "reason": statement.excluded.reason,
            },
            where=stripe_events.c.outcome == "rejected",
        )
    )
    return result


_COUNTERS: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = (
    weakref.WeakKeyDictionary()
)


def count(registry: CollectorRegistry, event_type: str, status: str) -> None:
    """Count one webhook outcome; unknown Stripe types share one label value.

    ``refused`` deliveries (bad signature or body) are counted as ``unverified``.
    """
    if registry not in _COUNTERS:
        _COUNTERS[registry] = Counter(
            "arbor_ingest_stripe_events_total",
            "Stripe webhook events received, by type and outcome",
            ["event_type", "outcome"],
            registry=registry,
        )
    known = event_type in MAPPERS or event_type in REASONS or event_type == "unverified"
    _COUNTERS[registry].labels(event_type if known else "other", status).inc()
