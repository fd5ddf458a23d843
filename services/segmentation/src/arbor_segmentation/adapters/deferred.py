"""Work tied to a session's transaction: just before it commits, and once it has.

The shared consumer loop calls a handler per event inside one transaction per
consumed batch, and gives the handler no view of the rest of the batch. A handler
that queues its events on the session and applies them all just before the commit
reads and writes each table once per batch instead of once per event, still inside
the transaction that claims the events in the inbox (RELIABILITY P2).

Everything queued belongs to the transaction: a rollback discards it, so a batch
retried after a failure starts from nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import AdaptedConnection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

_KEY = "arbor_segmentation.transaction"
_LISTENING = "arbor_segmentation.listening"


@dataclass
class _Transaction:
    before: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    after: list[Callable[[], None]] = field(default_factory=list)
    kept: dict[str, Any] = field(default_factory=dict)


def before_commit(session: AsyncSession, work: Callable[[], Awaitable[None]]) -> None:
    """Await ``work`` inside the transaction, just before it commits."""
    _transaction(session).before.append(work)


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Call ``callback`` once the transaction has committed; never if it rolls back."""
    _transaction(session).after.append(callback)


def kept(session: AsyncSession, key: str, make: Callable[[], Any]) -> tuple[Any, bool]:
    """The object kept under ``key`` for this transaction, and whether it is new."""
    kept = _transaction(session).kept
    if key in kept:
        return kept[key], False
    kept[key] = made = make()
    return made, True


def _transaction(session: AsyncSession) -> _Transaction:
    info = session.sync_session.info
    if not info.get(_LISTENING):
        info[_LISTENING] = True
        event.listen(session.sync_session, "before_commit", _run_before)
        event.listen(session.sync_session, "after_commit", _run_after)
        event.listen(session.sync_session, "after_rollback", _discard)
    found: _Transaction | None = info.get(_KEY)
    if found is None:
        found = info[_KEY] = _Transaction()
    return found


def _run_before(sync_session: Session) -> None:
    transaction: _Transaction | None = sync_session.info.get(_KEY)
    if transaction is None or not transaction.before:
        return
    # The hook is synchronous but runs inside the async session's greenlet; the
    # driver connection's run_async is SQLAlchemy's documented way back to asyncio,
    # and the awaited work may use the async session as usual.
    adapted = sync_session.connection().connection.dbapi_connection
    assert isinstance(adapted, AdaptedConnection)
    while transaction.before:
        work = transaction.before.pop(0)
        adapted.run_async(lambda _driver, work=work: work())


def _run_after(sync_session: Session) -> None:
    transaction: _Transaction | None = sync_session.info.pop(_KEY, None)
    for callback in transaction.after if transaction else []:
        callback()


def _discard(sync_session: Session) -> None:
    sync_session.info.pop(_KEY, None)
