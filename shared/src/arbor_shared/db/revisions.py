"""Migration operations shared by every service's first revision."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from arbor_shared.db.messaging import messaging_tables

# The messaging tables are infrastructure with one definition for every service; a
# change to them ships as a new revision in each service. The first revision creates
# them from the current definition, so each later change must also hold on a
# database created after it: the revisions below change only what is still there.


def create_messaging_tables() -> None:
    """Create the inbox, outbox and clock tables (see :mod:`.messaging`)."""
    metadata = sa.MetaData()
    messaging_tables(metadata)
    metadata.create_all(op.get_bind())


def drop_messaging_tables() -> None:
    """Undo :func:`create_messaging_tables`."""
    for table in ("clock_state", "outbox", "inbox"):
        op.drop_table(table)


def drop_outbox_sent_marks() -> None:
    """Outbox rows are deleted once sent, no longer marked and kept for an hour.

    The rows already marked sent are deleted with the mark, or the relay would send
    them again; a database created after this change has neither.
    """
    columns = sa.inspect(op.get_bind()).get_columns("outbox")
    if "sent_at" not in {column["name"] for column in columns}:
        return
    op.execute("DELETE FROM outbox WHERE sent_at IS NOT NULL")
    op.drop_index("outbox_unsent", table_name="outbox")
    op.drop_column("outbox", "sent_at")


def restore_outbox_sent_marks() -> None:
    """Undo :func:`drop_outbox_sent_marks`; every row left in the outbox is unsent."""
    op.add_column("outbox", sa.Column("sent_at", sa.DateTime(timezone=True)))
    op.create_index(
        "outbox_unsent", "outbox", ["seq"], postgresql_where=sa.text("sent_at IS NULL")
    )
