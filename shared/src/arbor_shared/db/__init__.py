"""Database access shared by the services: engines, messaging tables, migrations."""

from arbor_shared.db.engine import create_engine, session_factory
from arbor_shared.db.messaging import MessagingTables, messaging_tables

__all__ = ["MessagingTables", "create_engine", "messaging_tables", "session_factory"]
