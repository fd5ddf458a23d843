"""Rows the handlers produce, written with one statement per table per batch.

The shared consumer loop calls a handler per event inside one transaction per
consumed batch. Writing each fact as it comes costs a database round trip per event;
instead handlers queue rows on the session and a ``before_commit`` hook inserts them
all just before that same transaction commits, so the inbox record and the facts
still commit together (RELIABILITY P2) and a crash before commit keeps neither.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from arbor_metrics.adapters.tables import progress

_PENDING = "arbor_metrics.pending"


@dataclass
class _Pending:
    rows: dict[sa.Table, list[dict[str, Any]]] = field(default_factory=dict)
    newest: datetime | None = None


def queue(session: AsyncSession, table: sa.Table, row: dict[str, Any]) -> None:
    """Insert ``row`` into ``table`` when the session's transaction commits."""
    _pending(session.sync_session).rows.setdefault(table, []).append(row)


def observe(session: AsyncSession, event_time: datetime) -> None:
    """Remember the newest applied event's time, for the freshness gauge."""
    pending = _pending(session.sync_session)
    if pending.newest is None or event_time > pending.newest:
        pending.newest = event_time


def _pending(session: Session) -> _Pending:
    # Called for every row of every event, so the common case is one lookup.
    pending: _Pending | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = _Pending()
        if not event.contains(session, "before_commit", _flush):
            event.listen(session, "before_commit", _flush)
    return pending


@functools.cache
def _bulk_insert(table: sa.Table) -> sa.TextClause:
    """One statement taking the batch as one JSON array of rows: one round trip and
    the same SQL whatever the batch size, so it stays prepared. The server parses the
    JSON several times faster than the driver encodes a value per column per row. A
    key a row lacks is NULL.

    Rows go in in key order: two transactions inserting overlapping keys (a bulk
    replay commits batches concurrently) then wait for each other in one direction
    only and cannot deadlock.
    """
    key = ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
    sql = (
        f'INSERT INTO "{table.name}" SELECT * FROM '  # noqa: S608 - names from metadata
        f'json_populate_recordset(NULL::"{table.name}", CAST(:rows AS json)) '
        f"ORDER BY {key} ON CONFLICT DO NOTHING"
    )
    return sa.text(sql)


def _flush(session: Session) -> None:
    # Runs inside the async session's greenlet, so synchronous execute is allowed.
    pending: _Pending = session.info.pop(_PENDING, _Pending())
    # Tables in one order for every transaction, for the same reason as the rows.
    for table, rows in sorted(pending.rows.items(), key=lambda item: item[0].name):
        session.execute(_bulk_insert(table), {"rows": orjson.dumps(rows).decode()})
    newest = pending.newest
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
