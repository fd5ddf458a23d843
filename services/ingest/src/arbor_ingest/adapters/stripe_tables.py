"""Stripe webhook bookkeeping: every Stripe event's outcome, and what was booked."""

from __future__ import annotations

import sqlalchemy as sa

from arbor_ingest.adapters.tables import metadata

stripe_events = sa.Table(
    "stripe_events",
    metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("livemode", sa.Boolean, nullable=False),
    sa.Column(
        "received_at",
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=sa.func.now(),
    ),
)

stripe_bookings = sa.Table(
    "stripe_bookings",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("invoice_id", sa.Text, nullable=True),
    sa.Column("payment_id", sa.Text, nullable=True),
    sa.Column("stripe_event_id", sa.Text, nullable=False),
    sa.Column(
        "booked_at",
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=sa.func.now(),
    ),
)
