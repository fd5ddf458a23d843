"""Rows the handlers produce, written with one statement per table per batch.

The shared consumer loop calls a handler per event inside one transaction per
consumed batch. Writing each fact as it comes costs a database round trip per event;
instead handlers queue rows on the session and a ``before_commit`` hook inserts them
all just before that same transaction commits, so the inbox record and the facts
still commit together (RELIABILITY P2) and a crash before commit keeps neither.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from arbor_metrics.adapters.tables import progress

_PENDING = "arbor_metrics.pending"
_NEWEST = "arbor_metrics.newest_event"
_LISTENING = "arbor_metrics.listening"


def queue(session: AsyncSession, table: sa.Table, row: dict[str, Any]) -> None:
    """Insert ``row`` into ``table`` when the session's transaction commits."""
    _pending(session.sync_session).setdefault(table, []).append(row)


def observe(session: AsyncSession, event_time: datetime) -> None:
    """Remember the newest applied event's time, for the freshness gauge."""
    info = session.sync_session.info
    _pending(session.sync_session)
    newest = info.get(_NEWEST)
    if newest is None or event_time > newest:
        info[_NEWEST] = event_time


def _pending(session: Session) -> dict[sa.Table, list[dict[str, Any]]]:
    pending: dict[sa.Table, list[dict[str, Any]]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = {}
        session.info[_PENDING] = pending
    if not session.info.get(_LISTENING):
        session.info[_LISTENING] = True
        event.listen(session, "before_commit", _flush)
    return pending


_SQL_TYPES = {
    sa.Text: "text",
    sa.String: "text",
    sa.BigInteger: "bigint",
    sa.Integer: "integer",
    sa.SmallInteger: "smallint",
    sa.Date: "date",
    sa.DateTime: "timestamptz",
}


@functools.cache
def _bulk_insert(table: sa.Table) -> tuple[sa.TextClause, list[str]]:
    """One statement taking a column of values per parameter: a single round trip
    whatever the batch size, and the same SQL text every time, so it stays prepared.
    """
    columns = [c.name for c in table.columns]
    casts = ", ".join(
        f"CAST(:c{i} AS {_SQL_TYPES[type(c.type)]}[])"
        for i, c in enumerate(table.columns)
    )
    names = ", ".join(f'"{name}"' for name in columns)
    sql = (
        f'INSERT INTO "{table.name}" ({names}) '  # noqa: S608 - names from metadata
        f"SELECT * FROM unnest({casts}) ON CONFLICT DO NOTHING"
    )
    return sa.text(sql), columns


def _flush(session: Session) -> None:
    # Runs inside the async session's greenlet, so synchronous execute is allowed.
    pending: dict[sa.Table, list[dict[str, Any]]] = session.info.pop(_PENDING, {})
    newest: datetime | None = session.info.pop(_NEWEST, None)
    for table, rows in pending.items():
        bulk, columns = _bulk_insert(table)
        arrays = {f"c{i}": [row.get(c) for row in rows] for i, c in enumerate(columns)}
        session.execute(bulk, arrays)
    if newest is not None:
        # The batch counter tells readers' caches that new facts exist.
        statement = insert(progress).values(
            id=1, last_event_time=newest, applied_batches=1
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[progress.c.id],
                set_={
                    "last_event_time": sa.func.greatest(
                        progress.c.last_event_time,
                        statement.excluded.last_event_time,
                    ),
                    "applied_batches": progress.c.applied_batches + 1,
                },
            )
        )
