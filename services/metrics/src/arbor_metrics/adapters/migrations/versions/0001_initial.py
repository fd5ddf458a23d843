"""Messaging tables and invoice facts.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from arbor_shared.db.revisions import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables()
    op.create_table(
        "invoice_facts",
        sa.Column("invoice_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("issue_date", sa.Date, nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("settled_date", sa.Date, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("invoice_facts")
    drop_messaging_tables()
