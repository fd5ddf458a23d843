"""Outbox rows are deleted once the broker has them, no longer marked as sent.

Revision ID: 0002_outbox
Revises: 0001
"""

from arbor_shared.db.revisions import drop_outbox_sent_marks as upgrade
from arbor_shared.db.revisions import restore_outbox_sent_marks as downgrade

revision = "0002_outbox"
down_revision = "0001"
branch_labels = None
depends_on = None

__all__ = ["downgrade", "upgrade"]
