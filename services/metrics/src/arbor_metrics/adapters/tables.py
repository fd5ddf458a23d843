"""Metrics' tables: per-invoice facts the KPIs are computed from."""

from __future__ import annotations

import sqlalchemy as sa

from arbor_shared.db import messaging_tables

metadata = sa.MetaData()
messaging = messaging_tables(metadata)

invoice_facts = sa.Table(
    "invoice_facts",
    metadata,
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("issue_date", sa.Date, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("settled_date", sa.Date, nullable=True),
)
