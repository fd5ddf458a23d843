"""Payment-provider webhooks: ``POST /v1/webhooks/stripe``.

The signature is checked on the raw bytes before anything is parsed. Answers follow
Stripe's retry rules: 2xx for everything received and understood (booked, duplicate,
ignored with a reason, or refused with a reason Stripe cannot fix by retrying), 400
for a bad signature, 503 while the endpoint is not configured or the database is down,
so that Stripe delivers again.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Request, status
from pydantic import BaseModel

from arbor_ingest.domain.stripe import StripeError, parse_event, verify_signature
from arbor_ingest.stripe_config import StripeOptions, stripe_options
from arbor_ingest.stripe_intake import count, receive_stripe_event
from arbor_shared.clock import SystemClock
from arbor_shared.http import Runtime

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

# Stripe's timestamp is wall time even when the service runs on event time.
_WALL = SystemClock()


_EXAMPLE = {
    "id": "evt_1PgcA2B7WZ01zgkWbLdE0y8u",
    "object": "event",
    "type": "invoice.finalized",
    "created": 1721954100,
    "livemode": False,
    "data": {
        "object": {
            "id": "in_1Pgc6tB7WZ01zgkWu9fdqL6I",
            "object": "invoice",
            "customer": "cus_QXg1o8vcGmoR32",
            "currency": "usd",
            "amount_due": 1000,
            "effective_at": 1721954054,
            "due_date": 1724546054,
            "lines": {"data": [], "has_more": False},
        }
    },
}


class StripeWebhookRead(BaseModel):
    """What became of one Stripe event."""

    status: Literal["accepted", "duplicate", "ignored", "rejected"]
    reason: str | None = None
    event_ids: list[str] = []


@router.post(
    "/stripe",
    responses={
        400: {"description": "Missing, stale or wrong Stripe-Signature, or not JSON"},
        503: {"description": "Webhook secret not configured, or database down"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "A Stripe Event, byte for byte as Stripe sent it",
            "content": {"application/json": {"example": _EXAMPLE}},
        }
    },
)
async def receive_stripe_webhook(
    request: Request,
    runtime: Runtime,
    stripe_signature: Annotated[str | None, Header()] = None,
) -> StripeWebhookRead:
    """Verify a Stripe webhook, then book the canonical events it implies."""
    options = _options(runtime.settings)
    body = await request.body()
    try:
        verify_signature(
            body,
            stripe_signature,
            options.secret.get_secret_value(),
            now=_WALL.now(),
            tolerance_seconds=options.tolerance_seconds,
        )
        event = parse_event(body)
    except StripeError as exc:
        logger.warning("stripe webhook refused: %s", exc)
        count(runtime.metrics.registry, "unverified", "refused")
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
    async with runtime.sessions() as session, session.begin():
        result = await receive_stripe_event(
            session, runtime.outbox, event, options.defaults
        )
    count(runtime.metrics.registry, event.type, result.status)
    return StripeWebhookRead(
        status=result.status, reason=result.reason, event_ids=list(result.event_ids)
    )


def _options(settings: object) -> StripeOptions:
    options = stripe_options(settings)
    if options is None:
        logger.error("stripe webhook received but no webhook secret is configured")
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "Stripe webhooks are not configured (ARBOR_INGEST_STRIPE_WEBHOOK_SECRET)",
        )
    return options
