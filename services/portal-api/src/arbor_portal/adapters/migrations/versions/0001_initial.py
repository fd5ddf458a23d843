"""Messaging tables and the portal's read model and customer actions.

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


def upgrade() -> None:
    create_messaging_tables()
    op.create_table(
        "balances",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("open_balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("unapplied_cash_minor", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "currency"),
    )
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("country", sa.Text(), nullable=True),
        sa.Column("time_zone", sa.Text(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("language", sa.Text(), nullable=True),
        sa.Column("preferred_channel", sa.Text(), nullable=True),
        sa.Column("postal_address", JSONB, nullable=True),
        sa.Column("payment_method", JSONB, nullable=True),
        sa.Column("profile_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_table(
        "disputes",
        sa.Column("dispute_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("invoice_id", sa.Text(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("dispute_id"),
    )
    op.create_index(
        "disputes_by_invoice", "disputes", ["customer_id", "invoice_id"], unique=False
    )
    op.create_table(
        "dunning_actions",
        sa.Column("action_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("invoice_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("step", sa.Text(), nullable=True),
        sa.Column("channel", sa.Text(), nullable=True),
        sa.Column("planned_for", sa.DateTime(timezone=True), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("details", JSONB, server_default="{}", nullable=False),
        sa.Column("reason", JSONB, nullable=True),
        sa.PrimaryKeyConstraint("action_id"),
    )
    op.create_index(
        "dunning_by_invoice",
        "dunning_actions",
        ["customer_id", "invoice_id"],
        unique=False,
    )
    op.create_table(
        "identities",
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("linked_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("subject"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("response", JSONB, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "key"),
    )
    op.create_table(
        "invoices",
        sa.Column("invoice_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("number", sa.Text(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lines", JSONB, server_default="[]", nullable=False),
        sa.Column("status", sa.Text(), server_default="open", nullable=False),
        sa.Column("balance_minor", sa.BigInteger(), nullable=True),
        sa.Column("paid_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "credited_minor", sa.BigInteger(), server_default="0", nullable=False
        ),
        sa.Column(
            "written_off_minor", sa.BigInteger(), server_default="0", nullable=False
        ),
        sa.Column("settled_date", sa.Date(), nullable=True),
        sa.Column("ledger_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("invoice_id"),
    )
    op.create_index(
        "invoices_by_customer",
        "invoices",
        ["customer_id", "issue_date", "invoice_id"],
        unique=False,
    )
    op.create_table(
        "notifications",
        sa.Column("notification_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("notification_id"),
    )
    op.create_table(
        "payment_plans",
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("invoice_id", sa.Text(), nullable=False),
        sa.Column("installments", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("request_id"),
    )
    op.create_index(
        "plans_by_invoice", "payment_plans", ["customer_id", "invoice_id"], unique=False
    )
    op.create_table(
        "promises",
        sa.Column("promise_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("invoice_id", sa.Text(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("promised_date", sa.Date(), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("promise_id"),
    )
    op.create_index(
        "promises_by_invoice", "promises", ["customer_id", "invoice_id"], unique=False
    )
    op.create_table(
        "threads",
        sa.Column("thread_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("invoice_id", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("thread_id"),
    )
    op.create_index(
        "threads_by_customer", "threads", ["customer_id", "updated_at"], unique=False
    )
    op.create_table(
        "transactions",
        sa.Column("entry_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.Text(), nullable=True),
        sa.Column("payment_id", sa.Text(), nullable=True),
        sa.Column("invoice_id", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("allocations", JSONB, server_default="[]", nullable=False),
        sa.PrimaryKeyConstraint("entry_id"),
    )
    op.create_index(
        "transactions_by_customer",
        "transactions",
        ["customer_id", "occurred_at", "entry_id"],
        unique=False,
    )
    op.create_table(
        "messages",
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("thread_id", sa.Text(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["threads.thread_id"],
        ),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.create_index(
        "messages_by_thread", "messages", ["thread_id", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("messages_by_thread", table_name="messages")
    op.drop_table("messages")
    op.drop_index("transactions_by_customer", table_name="transactions")
    op.drop_table("transactions")
    op.drop_index("threads_by_customer", table_name="threads")
    op.drop_table("threads")
    op.drop_index("promises_by_invoice", table_name="promises")
    op.drop_table("promises")
    op.drop_index("plans_by_invoice", table_name="payment_plans")
    op.drop_table("payment_plans")
    op.drop_table("notifications")
    op.drop_index("invoices_by_customer", table_name="invoices")
    op.drop_table("invoices")
    op.drop_table("identities")
    op.drop_index("dunning_by_invoice", table_name="dunning_actions")
    op.drop_table("dunning_actions")
    op.drop_index("disputes_by_invoice", table_name="disputes")
    op.drop_table("disputes")
    op.drop_table("customers")
    op.drop_table("balances")
    op.drop_table("idempotency_keys")
    drop_messaging_tables()
