"""The inbox, outbox and clock tables every service keeps in its own schema.

The inbox makes consumption exactly-once in effect (RELIABILITY P2): an event's key is
recorded in the same transaction as its effect. The outbox makes publication durable
before acknowledgement (P1): an event row commits with the state that caused it and a
relay sends it afterwards, deleting the row once the broker has acknowledged it, so
every row in the outbox is one still to send.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB


@dataclass(frozen=True)
class MessagingTables:
    inbox: sa.Table
    outbox: sa.Table
    clock: sa.Table


def messaging_tables(metadata: sa.MetaData) -> MessagingTables:
    """Declare the messaging tables on a service's metadata."""
    return MessagingTables(
        inbox=sa.Table(
            "inbox",
            metadata,
            sa.Column("consumer", sa.Text, primary_key=True),
            sa.Column("event_key", sa.Text, primary_key=True),
            sa.Column("outcome", sa.Text, nullable=False),
            sa.Column(
                "processed_at",
                sa.DateTime(timezone=True),
                nullable=False,
                server_default=sa.func.now(),
            ),
        ),
        outbox=sa.Table(
            "outbox",
            metadata,
            sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
            sa.Column("event_id", sa.Text, nullable=False),
            sa.Column("topic", sa.Text, nullable=False),
            sa.Column("key", sa.Text, nullable=True),
            sa.Column("value", sa.LargeBinary, nullable=False),
            sa.Column("headers", JSONB, nullable=False),
            sa.Column(
                "created_at",
                sa.DateTime(timezone=True),
                nullable=False,
                server_default=sa.func.now(),
            ),
        ),
        clock=sa.Table(
            "clock_state",
            metadata,
            sa.Column("id", sa.SmallInteger, primary_key=True),
            sa.Column("now", sa.DateTime(timezone=True), nullable=False),
        ),
    )
