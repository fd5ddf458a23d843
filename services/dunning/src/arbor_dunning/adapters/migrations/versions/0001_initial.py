"""Messaging tables, policies, customers, invoices, schedule and contact ledger.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from arbor_shared.db.revisions import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _instant(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _now(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now())


def upgrade() -> None:
    create_messaging_tables()
    _create_facts()
    _create_schedule()


def _create_facts() -> None:
    op.create_table(
        "policies",
        sa.Column("cohort", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("document", JSONB, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        _now("created_at"),
    )
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("email", sa.Text),
        sa.Column("country", sa.String(2)),
        sa.Column("time_zone", sa.Text),
        sa.Column("language", sa.String(2)),
        sa.Column("preferred_channel", sa.Text),
        sa.Column("cohort", sa.Text, nullable=False, server_default="default"),
        sa.Column("cohort_version", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "invoices",
        sa.Column("invoice_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False, index=True),
        sa.Column("number", sa.Text),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("balance_minor", sa.BigInteger, nullable=False),
        sa.Column("issue_date", sa.Date, nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("hold", sa.Text),
        sa.Column("planned", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("contacted", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "promises",
        sa.Column("promise_id", sa.Text, primary_key=True),
        sa.Column("invoice_id", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("promised_date", sa.Date, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
    )


def _create_schedule() -> None:
    op.create_table(
        "steps",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("invoice_id", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("cohort", sa.Text, nullable=False),
        sa.Column("policy_version", sa.Integer, nullable=False),
        sa.Column("variant", sa.Text),
        sa.Column("step", sa.Text, nullable=False),
        sa.Column("offset_days", sa.Integer, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("template", sa.Text, nullable=False),
        sa.Column("spec", JSONB, nullable=False),
        _instant("due_at"),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("cancel_reason", sa.Text),
        sa.UniqueConstraint("invoice_id", "policy_version", "step", "channel"),
    )
    op.create_index(
        "steps_due", "steps", ["due_at"], postgresql_where=sa.text("state = 'planned'")
    )
    op.create_index("steps_invoice", "steps", ["invoice_id"])
    op.create_table(
        "contacts",
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
        _now("touched_at"),
        sa.UniqueConstraint("invoice_id", "policy_version", "step", "channel"),
    )
    op.create_table(
        "fees",
        sa.Column("invoice_id", sa.Text, primary_key=True),
        sa.Column("period", sa.Text, primary_key=True),
        sa.Column("fee_id", sa.Text, nullable=False, unique=True),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
    )


def downgrade() -> None:
    for name in ("fees", "contacts", "steps", "promises", "invoices", "customers"):
        op.drop_table(name)
    op.drop_table("policies")
    drop_messaging_tables()
