"""Metrics' tables: the ledger, cohort, dunning and promise facts KPIs come from.

Every fact table is insert-only and keyed by the fact itself, so a redelivered or
duplicated event (even under a new event id) adds nothing and the arrival order does
not matter (RELIABILITY P2, P5); the KPIs are folds over these sets at read time.
"""

from __future__ import annotations

import sqlalchemy as sa

from arbor_shared.db import messaging_tables

metadata = sa.MetaData()
messaging = messaging_tables(metadata)


def _instant(name: str, **options: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), **options)  # type: ignore[arg-type]


invoice_facts = sa.Table(
    "invoice_facts",
    metadata,
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False, index=True),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("issue_date", sa.Date, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
)

invoice_snapshots = sa.Table(
    "invoice_snapshots",
    metadata,
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

cohort_memberships = sa.Table(
    "cohort_memberships",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("from_cohort", sa.Text, nullable=True),
    sa.Column("to_cohort", sa.Text, nullable=False),
    sa.Column("definition_version", sa.Integer, nullable=False),
    sa.Column("rule", sa.Text, nullable=False),
    _instant("changed_at", nullable=False),
)

reminders = sa.Table(
    "reminders",
    metadata,
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

promise_events = sa.Table(
    "promise_events",
    metadata,
    sa.Column("promise_id", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("invoice_id", sa.Text, nullable=False),
    sa.Column("currency", sa.String(3), nullable=True),
    sa.Column("amount_minor", sa.BigInteger, nullable=True),
    sa.Column("promised_date", sa.Date, nullable=True),
    _instant("at", nullable=False),
)

progress = sa.Table(
    "progress",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True),
    _instant("last_event_time", nullable=False),
    sa.Column("applied_batches", sa.BigInteger, nullable=False, server_default="0"),
)

FACT_TABLES = (
    invoice_facts,
    invoice_snapshots,
    cohort_memberships,
    reminders,
    promise_events,
)
