"""Stored Idempotency-Key answers are indexed by age, for the retention purge.

Revision ID: 0004_retention
Revises: 0003
"""

from alembic import op

revision = "0004_retention"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("idempotency_keys_by_age", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("idempotency_keys_by_age", table_name="idempotency_keys")
