"""The portal's tables: its own read model of the account, and customer actions.

Every table that holds customer data carries ``customer_id`` and every query filters
on it (RELIABILITY P8); the indexes lead with it for the same reason.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from arbor_shared.db import messaging_tables

metadata = sa.MetaData()
messaging = messaging_tables(metadata)


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _customer() -> sa.Column[str]:
    return sa.Column("customer_id", sa.Text, nullable=False)


identities = sa.Table(
    "identities",
    metadata,
    sa.Column("subject", sa.Text, primary_key=True),
    _customer(),
    _at("linked_at"),
    sa.Column("linked_by", sa.Text, nullable=False),
)

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=True),
    sa.Column("email", sa.Text, nullable=True),
    sa.Column("country", sa.Text, nullable=True),
    sa.Column("time_zone", sa.Text, nullable=True),
    sa.Column("currency", sa.String(3), nullable=True),
    sa.Column("language", sa.Text, nullable=True),
    sa.Column("preferred_channel", sa.Text, nullable=True),
    sa.Column("postal_address", JSONB, nullable=True),
    sa.Column("payment_method", JSONB, nullable=True),
    _at("profile_at"),
)

invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("invoice_id", sa.Text, primary_key=True),
    _customer(),
    sa.Column("number", sa.Text, nullable=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("issue_date", sa.Date, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    _at("issued_at", nullable=True),
    sa.Column("lines", JSONB, nullable=False, server_default="[]"),
    sa.Column("status", sa.Text, nullable=False, server_default="open"),
    sa.Column("balance_minor", sa.BigInteger, nullable=True),
    sa.Column("paid_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("credited_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("written_off_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("settled_date", sa.Date, nullable=True),
    _at("ledger_at", nullable=True),
    sa.Index("invoices_by_customer", "customer_id", "issue_date", "invoice_id"),
)

transactions = sa.Table(
    "transactions",
    metadata,
    sa.Column("entry_id", sa.Text, primary_key=True),
    _customer(),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("source_id", sa.Text, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    _at("occurred_at"),
    sa.Column("method", sa.Text, nullable=True),
    sa.Column("payment_id", sa.Text, nullable=True),
    sa.Column("invoice_id", sa.Text, nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("allocations", JSONB, nullable=False, server_default="[]"),
    sa.Index("transactions_by_customer", "customer_id", "occurred_at", "entry_id"),
)

balances = sa.Table(
    "balances",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("currency", sa.String(3), primary_key=True),
    sa.Column("open_balance_minor", sa.BigInteger, nullable=False),
    sa.Column("unapplied_cash_minor", sa.BigInteger, nullable=False),
    _at("changed_at"),
)

dunning_actions = sa.Table(
    "dunning_actions",
    metadata,
    sa.Column("action_id", sa.Text, primary_key=True),
    _customer(),
    sa.Column("invoice_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("step", sa.Text, nullable=True),
    sa.Column("channel", sa.Text, nullable=True),
    _at("planned_for", nullable=True),
    _at("occurred_at", nullable=True),
    sa.Column("cancel_reason", sa.Text, nullable=True),
    sa.Column("details", JSONB, nullable=False, server_default="{}"),
    sa.Column("reason", JSONB, nullable=True),
    sa.Index("dunning_by_invoice", "customer_id", "invoice_id"),
)

disputes = sa.Table(
    "disputes",
    metadata,
    sa.Column("dispute_id", sa.Text, primary_key=True),
    _customer(),
    sa.Column("invoice_id", sa.Text, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("origin", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text, nullable=True),
    _at("opened_at"),
    _at("resolved_at", nullable=True),
    sa.Index("disputes_by_invoice", "customer_id", "invoice_id"),
)

promises = sa.Table(
    "promises",
    metadata,
    sa.Column("promise_id", sa.Text, primary_key=True),
    _customer(),
    sa.Column("invoice_id", sa.Text, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("promised_date", sa.Date, nullable=False),
    sa.Column("origin", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    _at("made_at"),
    _at("closed_at", nullable=True),
    sa.Index("promises_by_invoice", "customer_id", "invoice_id"),
)

payment_plans = sa.Table(
    "payment_plans",
    metadata,
    sa.Column("request_id", sa.Text, primary_key=True),
    _customer(),
    sa.Column("invoice_id", sa.Text, nullable=False),
    sa.Column("installments", sa.Integer, nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    _at("requested_at"),
    sa.Index("plans_by_invoice", "customer_id", "invoice_id"),
)

threads = sa.Table(
    "threads",
    metadata,
    sa.Column("thread_id", sa.Text, primary_key=True),
    _customer(),
    sa.Column("invoice_id", sa.Text, nullable=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    _at("created_at"),
    _at("updated_at"),
    sa.Index("threads_by_customer", "customer_id", "updated_at"),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("message_id", sa.Text, primary_key=True),
    sa.Column("thread_id", sa.Text, sa.ForeignKey("threads.thread_id"), nullable=False),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    _at("created_at"),
    sa.Index("messages_by_thread", "thread_id", "created_at"),
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("notification_id", sa.Text, primary_key=True),
    _customer(),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    _at("created_at"),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("response", JSONB, nullable=True),
    _at("created_at"),
)
