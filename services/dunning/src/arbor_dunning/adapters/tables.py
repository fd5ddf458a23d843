"""Dunning's tables: policies, the facts it plans from, the schedule, the contacts."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from arbor_shared.db import messaging_tables

metadata = sa.MetaData()
messaging = messaging_tables(metadata)

_NOW = sa.func.now()


def _instant(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


policies = sa.Table(
    "policies",
    metadata,
    sa.Column("cohort", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("document", JSONB, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW),
)

# The profile is null until the customer's details arrive: a cohort move can come
# first (another topic), and it must not be lost.
customers = sa.Table(
    "customers",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=True),
    sa.Column("email", sa.Text, nullable=True),
    sa.Column("country", sa.String(2), nullable=True),
    sa.Column("time_zone", sa.Text, nullable=True),
    sa.Column("language", sa.String(2), nullable=True),
    sa.Column("preferred_channel", sa.Text, nullable=True),
    sa.Column("cohort", sa.Text, nullable=False, server_default="default"),
    sa.Column("cohort_version", sa.Integer, nullable=False, server_default="0"),
)

# The ledger's view of each invoice, as ingest publishes it: never re-derived here.
invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False, index=True),
    sa.Column("number", sa.Text, nullable=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("balance_minor", sa.BigInteger, nullable=False),
    sa.Column("issue_date", sa.Date, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("hold", sa.Text, nullable=True),
    sa.Column("planned", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("contacted", sa.Boolean, nullable=False, server_default=sa.false()),
)

promises = sa.Table(
    "promises",
    metadata,
    sa.Column("promise_id", sa.Text, primary_key=True),
    sa.Column("invoice_id", sa.Text, nullable=False),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("promised_date", sa.Date, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
)

steps = sa.Table(
    "steps",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("invoice_id", sa.Text, nullable=False),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("cohort", sa.Text, nullable=False),
    sa.Column("policy_version", sa.Integer, nullable=False),
    sa.Column("variant", sa.Text, nullable=True),
    sa.Column("step", sa.Text, nullable=False),
    sa.Column("offset_days", sa.Integer, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("template", sa.Text, nullable=False),
    sa.Column("spec", JSONB, nullable=False),
    _instant("due_at"),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("cancel_reason", sa.Text, nullable=True),
    sa.UniqueConstraint("invoice_id", "policy_version", "step", "channel"),
    sa.Index("steps_due", "due_at", postgresql_where=sa.text("state = 'planned'")),
    sa.Index("steps_invoice", "invoice_id"),
)

# The contact ledger: a row is committed before anything leaves the process, and its
# unique key makes a second contact for the same step impossible (RELIABILITY F4).
contacts = sa.Table(
    "contacts",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("invoice_id", sa.Text, nullable=False),
    sa.Column("customer_id", sa.Text, nullable=False, index=True),
    sa.Column("policy_version", sa.Integer, nullable=False),
    sa.Column("step", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("message_id", sa.Text, nullable=False, unique=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("message", JSONB, nullable=False),
    sa.Column("reason", JSONB, nullable=False),
    sa.Column("balance_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    _instant("decided_at"),
    _instant("sent_at", nullable=True),
    # Database time, not the service clock: leases are about process liveness.
    sa.Column("touched_at", sa.DateTime(timezone=True), server_default=_NOW),
    sa.UniqueConstraint("invoice_id", "policy_version", "step", "channel"),
)

fees = sa.Table(
    "fees",
    metadata,
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("period", sa.Text, primary_key=True),
    sa.Column("fee_id", sa.Text, nullable=False, unique=True),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
)
