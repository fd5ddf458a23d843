"""Ingest's tables, in its own schema."""

from __future__ import annotations

import sqlalchemy as sa

from arbor_shared.db import messaging_tables

metadata = sa.MetaData()
messaging = messaging_tables(metadata)

accepted_events = sa.Table(
    "accepted_events",
    metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("body_sha256", sa.Text, nullable=False),
    sa.Column(
        "accepted_at",
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=sa.func.now(),
    ),
)

invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False, index=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("issue_date", sa.Date, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("paid_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("credited_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("written_off_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("voided", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
)
