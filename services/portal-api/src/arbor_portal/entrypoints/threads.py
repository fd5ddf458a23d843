"""Message threads: customers write to finance; finance answers via operations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status

from arbor_portal.entrypoints.deps import (
    Acting,
    CustomerAccount,
    IdempotencyKey,
    PageLimit,
)
from arbor_portal.entrypoints.errors import ERROR_RESPONSES, NOT_FOUND, TOO_LARGE
from arbor_portal.entrypoints.schemas import (
    MessageCreate,
    MessageRead,
    ThreadCreate,
    ThreadRead,
    ThreadSummaryRead,
)
from arbor_portal.handlers import idempotency, messages
from arbor_portal.handlers.idempotency import fingerprint

router = APIRouter(prefix="/v1/threads", tags=["messages"], responses=ERROR_RESPONSES)

ThreadId = Annotated[str, Path(max_length=128, examples=["thr_9a"])]


@router.get("")
async def list_threads(
    me: CustomerAccount, limit: PageLimit
) -> list[ThreadSummaryRead]:
    """Your conversations with the finance team, most recent first."""
    rows = await messages.list_threads(
        me.db, customer_id=me.customer_id, status=None, limit=limit
    )
    return [ThreadSummaryRead(**row) for row in rows]


@router.post("", status_code=status.HTTP_201_CREATED, responses=NOT_FOUND | TOO_LARGE)
async def start_thread(
    thread: ThreadCreate, actor: Acting, request: Request, key: IdempotencyKey = None
) -> ThreadRead:
    """Write to the finance team, about one invoice or in general."""

    async def act() -> ThreadRead:
        row = await messages.start_thread(
            actor,
            subject=thread.subject,
            body=thread.body,
            invoice_id=thread.invoice_id,
        )
        created = await messages.get_thread(
            actor.session, row["thread_id"], customer_id=actor.customer_id
        )
        return ThreadRead(**created)

    same = fingerprint("POST", request.url.path, thread)
    return await idempotency.once(actor, key, same, ThreadRead, act)


@router.get("/{thread_id}", responses=NOT_FOUND)
async def get_thread(thread_id: ThreadId, me: CustomerAccount) -> ThreadRead:
    """One conversation with all its messages."""
    thread = await messages.get_thread(me.db, thread_id, customer_id=me.customer_id)
    return ThreadRead(**thread)


@router.post(
    "/{thread_id}/messages",
    status_code=status.HTTP_201_CREATED,
    responses=NOT_FOUND | TOO_LARGE,
)
async def add_message(
    thread_id: ThreadId,
    message: MessageCreate,
    actor: Acting,
    request: Request,
    key: IdempotencyKey = None,
) -> MessageRead:
    """Write again in one of your conversations."""

    async def act() -> MessageRead:
        row = await messages.add_customer_message(
            actor, thread_id=thread_id, body=message.body
        )
        return MessageRead(**row)

    same = fingerprint("POST", request.url.path, message)
    return await idempotency.once(actor, key, same, MessageRead, act)
