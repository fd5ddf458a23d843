"""Migration operations shared by every service's first revision."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from arbor_shared.db.messaging import messaging_tables

# The messaging tables are infrastructure with one definition for every service; a
# change to them ships as a new revision in each service, never as an edit here.


def create_messaging_tables() -> None:
    """Create the inbox, outbox and clock tables (see :mod:`.messaging`)."""
    metadata = sa.MetaData()
    messaging_tables(metadata)
    metadata.create_all(op.get_bind())


def drop_messaging_tables() -> None:
    """Undo :func:`create_messaging_tables`."""
    for table in ("clock_state", "outbox", "inbox"):
        op.drop_table(table)
