"""The receivables ledger, business keys and idempotency keys.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The walking skeleton's invoice table never held production data; the ledger
    # replaces it with invoices, funds and customers.
    op.drop_table("invoices")
    op.create_table(
        "business_keys",
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("data_sha256", sa.Text, nullable=False),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("publisher", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("request_sha256", sa.Text, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response", JSONB, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    )
    op.create_table(
        "ledger_customers",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("time_zone", sa.Text, nullable=False, server_default="UTC"),
    )
    _create_invoices()
    _create_funds()


def _create_invoices() -> None:
    op.create_table(
        "ledger_invoices",
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
    )


def _create_funds() -> None:
    op.create_table(
        "ledger_funds",
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
    )


def downgrade() -> None:
    for table in (
        "ledger_funds",
        "ledger_invoices",
        "ledger_customers",
        "idempotency_keys",
        "business_keys",
    ):
        op.drop_table(table)
    op.create_table(
        "invoices",
        sa.Column("invoice_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False, index=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("issue_date", sa.Date, nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("paid_minor", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("credited_minor", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column(
            "written_off_minor", sa.BigInteger, nullable=False, server_default="0"
        ),
        sa.Column("voided", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
    )
