"""Messaging tables, behaviour state, definitions, membership, timers, model.

Revision ID: 0001
Revises:
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from arbor_shared.db.revisions import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TABLES = (
    "models",
    "activations",
    "due_timers",
    "membership_history",
    "memberships",
    "cohort_definitions",
    "customer_features",
)


def _at(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    create_messaging_tables()
    op.create_table(
        "customer_features",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("state", JSONB, nullable=False),
        _at("updated_at"),
    )
    op.create_table(
        "cohort_definitions",
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("rules", JSONB, nullable=False),
        sa.Column("default_cohort", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        _at("created_at"),
        _at("activated_at", nullable=True),
    )
    op.create_table(
        "memberships",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("cohort", sa.Text, nullable=False),
        sa.Column("definition_version", sa.Integer, nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        _at("since"),
    )
    op.create_table(
        "membership_history",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("from_cohort", sa.Text, nullable=True),
        sa.Column("to_cohort", sa.Text, nullable=False),
        sa.Column("definition_version", sa.Integer, nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("features", JSONB, nullable=False),
        _at("valid_from"),
        _at("valid_to", nullable=True),
    )
    _create_work_tables()


def _create_work_tables() -> None:
    op.create_table(
        "due_timers",
        sa.Column("invoice_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        _at("fire_at"),
    )
    op.create_index("ix_due_timers_fire_at", "due_timers", ["fire_at"])
    op.create_index("ix_due_timers_customer_id", "due_timers", ["customer_id"])
    op.create_table(
        "activations",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("definition_version", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("processed", sa.Integer, nullable=False),
        sa.Column("moved", sa.Integer, nullable=False),
        sa.Column("cursor", sa.Text, nullable=True),
        sa.Column("requested_by", sa.Text, nullable=False),
        _at("started_at"),
        _at("finished_at", nullable=True),
    )
    op.create_table(
        "models",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("examples", sa.Integer, nullable=False),
        _at("saved_at"),
    )


def downgrade() -> None:
    for table in _TABLES:
        op.drop_table(table)
    drop_messaging_tables()
