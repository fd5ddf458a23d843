"""Message threads between a customer and the finance team.

Messages stay in the portal's own tables: finance reads and answers them through the
operations API, so no other service needs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_portal.adapters import readmodel
from arbor_portal.adapters.readmodel import Db
from arbor_portal.adapters.tables import messages, threads
from arbor_portal.domain.errors import NotFoundError
from arbor_portal.handlers.actions import Actor, new_id
from arbor_shared.clock import Clock


async def start_thread(
    actor: Actor, *, subject: str, body: str, invoice_id: str | None
) -> dict[str, Any]:
    """A new conversation, about one invoice or the account in general."""
    if (
        invoice_id is not None
        and (await readmodel.get_invoice(actor.session, actor.customer_id, invoice_id))
        is None
    ):
        raise NotFoundError("invoice", invoice_id)
    now = actor.clock.now()
    thread_id = new_id("thr")
    thread: dict[str, Any] = {
        "thread_id": thread_id,
        "customer_id": actor.customer_id,
        "invoice_id": invoice_id,
        "subject": subject,
        "status": "awaiting_finance",
        "created_at": now,
        "updated_at": now,
    }
    await actor.session.execute(sa.insert(threads).values(thread))
    await _add_message(
        actor.session, thread["thread_id"], "customer", body, actor.clock
    )
    return thread


async def add_customer_message(
    actor: Actor, *, thread_id: str, body: str
) -> dict[str, Any]:
    """The customer writes again in one of their threads."""
    await get_thread(actor.session, thread_id, customer_id=actor.customer_id)
    return await _post(actor.session, thread_id, "customer", body, actor.clock)


async def add_finance_reply(
    session: AsyncSession, clock: Clock, *, thread_id: str, body: str
) -> dict[str, Any]:
    """Finance answers a thread (operations API)."""
    await get_thread(session, thread_id, customer_id=None)
    return await _post(session, thread_id, "finance", body, clock)


async def get_thread(
    db: Db, thread_id: str, *, customer_id: str | None
) -> dict[str, Any]:
    """A thread with its messages; ``customer_id`` None only for operators."""
    query = sa.select(threads).where(threads.c.thread_id == thread_id)
    if customer_id is not None:
        query = query.where(threads.c.customer_id == customer_id)
    thread = (await db.execute(query.with_for_update())).mappings().first()
    if thread is None:
        raise NotFoundError("thread", thread_id)
    return dict(thread) | {"messages": await _messages(db, thread_id)}


async def list_threads(
    db: Db,
    *,
    customer_id: str | None,
    status: str | None,
    limit: int,
) -> Sequence[sa.RowMapping]:
    """Threads, most recently active first."""
    query = sa.select(threads)
    if customer_id is not None:
        query = query.where(threads.c.customer_id == customer_id)
    if status is not None:
        query = query.where(threads.c.status == status)
    query = query.order_by(threads.c.updated_at.desc(), threads.c.thread_id)
    return (await db.execute(query.limit(limit))).mappings().all()


async def _post(
    session: AsyncSession, thread_id: str, author: str, body: str, clock: Clock
) -> dict[str, Any]:
    message = await _add_message(session, thread_id, author, body, clock)
    status = "awaiting_finance" if author == "customer" else "awaiting_customer"
    await session.execute(
        sa.update(threads)
        .where(threads.c.thread_id == thread_id)
        .values(status=status, updated_at=message["created_at"])
    )
    return message


async def _add_message(
    session: AsyncSession, thread_id: str, author: str, body: str, clock: Clock
) -> dict[str, Any]:
    message = {
        "message_id": new_id("msg"),
        "thread_id": thread_id,
        "author": author,
        "body": body,
        "created_at": clock.now(),
    }
    await session.execute(sa.insert(messages).values(message))
    return message


async def _messages(db: Db, thread_id: str) -> list[dict[str, Any]]:
    query = (
        sa.select(messages)
        .where(messages.c.thread_id == thread_id)
        .order_by(messages.c.created_at, messages.c.message_id)
    )
    return [dict(m) for m in (await db.execute(query)).mappings().all()]
