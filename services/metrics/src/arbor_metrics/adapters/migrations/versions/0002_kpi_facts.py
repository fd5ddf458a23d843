"""Insert-only fact tables for the KPIs; settlement moves to invoice snapshots.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _instant(name: str, **options: bool) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), **options)  # type: ignore[arg-type]


def upgrade() -> None:
    op.drop_column("invoice_facts", "settled_date")
    op.create_index("ix_invoice_facts_currency", "invoice_facts", ["currency"])
    op.create_table(
        "invoice_snapshots",
        sa.Column("invoice_id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, primary_key=True),
        _instant("at", primary_key=True),
        sa.Column("cause", sa.Text, primary_key=True),
        sa.Column("effective", sa.Date, nullable=False),
        sa.Column("balance_minor", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=True),
        sa.Column("paid_minor", sa.BigInteger, nullable=True),
        sa.Column("credited_minor", sa.BigInteger, nullable=True),
        sa.Column("written_off_minor", sa.BigInteger, nullable=True),
        sa.Column("settled_date", sa.Date, nullable=True),
        sa.Column("settled_by", sa.Text, nullable=True),
    )
    op.create_table(
        "cohort_memberships",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("from_cohort", sa.Text, nullable=True),
        sa.Column("to_cohort", sa.Text, nullable=False),
        sa.Column("definition_version", sa.Integer, nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        _instant("changed_at", nullable=False),
    )
    op.create_table(
        "reminders",
        sa.Column("invoice_id", sa.Text, primary_key=True),
        sa.Column("step", sa.Text, primary_key=True),
        _instant("sent_at", primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("balance_minor", sa.BigInteger, nullable=False),
        sa.Column("policy_id", sa.Text, nullable=False),
        sa.Column("policy_version", sa.Integer, nullable=False),
        sa.Column("variant", sa.Text, nullable=True),
        sa.Column("cohort", sa.Text, nullable=False),
    )
    op.create_table(
        "promise_events",
        sa.Column("promise_id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("invoice_id", sa.Text, nullable=False),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("amount_minor", sa.BigInteger, nullable=True),
        sa.Column("promised_date", sa.Date, nullable=True),
        _instant("at", nullable=False),
    )
    op.create_table(
        "progress",
        sa.Column("id", sa.SmallInteger, primary_key=True),
        _instant("last_event_time", nullable=False),
        sa.Column("applied_batches", sa.BigInteger, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    for table in (
        "progress",
        "promise_events",
        "reminders",
        "cohort_memberships",
        "invoice_snapshots",
    ):
        op.drop_table(table)
    op.drop_index("ix_invoice_facts_currency", "invoice_facts")
    op.add_column("invoice_facts", sa.Column("settled_date", sa.Date, nullable=True))
