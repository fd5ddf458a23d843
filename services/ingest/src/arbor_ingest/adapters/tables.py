"""Ingest's tables, in its own schema."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from arbor_shared.db import messaging_tables

metadata = sa.MetaData()
messaging = messaging_tables(metadata)


def _created_at() -> sa.Column[object]:
    return sa.Column(
        "created_at",
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=sa.func.now(),
    )


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

# A business identity (an invoice id, a payment id, a provider's payment id) belongs to
# one event's facts; the same facts under another event id are a duplicate, different
# facts are refused.
business_keys = sa.Table(
    "business_keys",
    metadata,
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("data_sha256", sa.Text, nullable=False),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("publisher", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("request_sha256", sa.Text, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("response", JSONB, nullable=False),
    _created_at(),
    sa.Index("idempotency_keys_by_age", "created_at"),
)

ledger_customers = sa.Table(
    "ledger_customers",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("time_zone", sa.Text, nullable=False, server_default="UTC"),
)

ledger_invoices = sa.Table(
    "ledger_invoices",
    metadata,
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False, index=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("issue_date", sa.Date, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("paid_minor", sa.BigInteger, nullable=False),
    sa.Column("credited_minor", sa.BigInteger, nullable=False),
    sa.Column("written_off_minor", sa.BigInteger, nullable=False),
    sa.Column("voided", sa.Boolean, nullable=False),
    sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("settled_by", sa.Text, nullable=True),
    sa.Column("written_off_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("applications", JSONB, nullable=False),
    sa.Index(
        "ledger_invoices_open",
        "customer_id",
        postgresql_where=sa.text(
            "NOT voided "
            "AND amount_minor > paid_minor + credited_minor + written_off_minor"
        ),
    ),
)

ledger_funds = sa.Table(
    "ledger_funds",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("funds_id", sa.Text, nullable=False),
    sa.Column("customer_id", sa.Text, nullable=False, index=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("refunded_minor", sa.BigInteger, nullable=False),
    sa.Column("applied", JSONB, nullable=False),
    sa.Column("parked", JSONB, nullable=False),
    # Applied and parked money are in the JSON maps; the held amount is kept beside
    # them so that the funds a movement may use are found by an index.
    sa.Column("held_minor", sa.BigInteger, nullable=False),
    sa.Index(
        "ledger_funds_holding",
        "customer_id",
        postgresql_where=sa.text("held_minor > 0"),
    ),
)
