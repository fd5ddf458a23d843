"""Stripe webhook outcomes and bookings.

Revision ID: 0002_stripe
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_stripe"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stripe_events",
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
    op.create_index("stripe_events_outcome", "stripe_events", ["outcome", "event_type"])
    op.create_table(
        "stripe_bookings",
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


def downgrade() -> None:
    op.drop_table("stripe_bookings")
    op.drop_index("stripe_events_outcome", "stripe_events")
    op.drop_table("stripe_events")
