"""Segmentation's tables: behaviour state, definitions, membership and timers."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from arbor_shared.db import messaging_tables

metadata = sa.MetaData()
messaging = messaging_tables(metadata)

customer_features = sa.Table(
    "customer_features",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("state", JSONB, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

cohort_definitions = sa.Table(
    "cohort_definitions",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("rules", JSONB, nullable=False),
    sa.Column("default_cohort", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("cohort", sa.Text, nullable=False),
    sa.Column("definition_version", sa.Integer, nullable=False),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("since", sa.DateTime(timezone=True), nullable=False),
)

membership_history = sa.Table(
    "membership_history",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("from_cohort", sa.Text, nullable=True),
    sa.Column("to_cohort", sa.Text, nullable=False),
    sa.Column("definition_version", sa.Integer, nullable=False),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("features", JSONB, nullable=False),
    sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
    sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
)

due_timers = sa.Table(
    "due_timers",
    metadata,
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("fire_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_due_timers_fire_at", "fire_at"),
    sa.Index("ix_due_timers_customer_id", "customer_id"),
)

activations = sa.Table(
    "activations",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("definition_version", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("processed", sa.Integer, nullable=False),
    sa.Column("moved", sa.Integer, nullable=False),
    sa.Column("cursor", sa.Text, nullable=True),
    sa.Column("requested_by", sa.Text, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
)

models = sa.Table(
    "models",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("examples", sa.Integer, nullable=False),
    sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
)
