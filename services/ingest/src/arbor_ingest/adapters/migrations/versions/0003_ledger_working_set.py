"""Funds keep their held amount; open invoices and funds holding money are indexed.

A movement loads only the rows it can touch (open invoices, funds holding money,
what the events name), so a customer's settled history is never read again.

Revision ID: 0003
Revises: 0002_stripe
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002_stripe"
branch_labels = None
depends_on = None

OPEN = "NOT voided AND amount_minor > paid_minor + credited_minor + written_off_minor"


def upgrade() -> None:
    op.add_column("ledger_funds", sa.Column("held_minor", sa.BigInteger))
    op.execute(
        "UPDATE ledger_funds SET held_minor = amount_minor - refunded_minor - "
        "(SELECT coalesce(sum((pair->>1)::bigint), 0) "
        "FROM jsonb_array_elements(applied) AS pair)"
    )
    op.alter_column("ledger_funds", "held_minor", nullable=False)
    op.create_index(
        "ledger_funds_holding",
        "ledger_funds",
        ["customer_id"],
        postgresql_where=sa.text("held_minor > 0"),
    )
    op.create_index(
        "ledger_invoices_open",
        "ledger_invoices",
        ["customer_id"],
        postgresql_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index("ledger_invoices_open", "ledger_invoices")
    op.drop_index("ledger_funds_holding", "ledger_funds")
    op.drop_column("ledger_funds", "held_minor")
