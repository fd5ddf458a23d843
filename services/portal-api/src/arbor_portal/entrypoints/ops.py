"""Operations API for the finance team: identity links and replies to customers.

Every route needs the operator role (deny by default): a customer token gets 403.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status

from arbor_portal.entrypoints.deps import PageLimit
from arbor_portal.entrypoints.errors import NOT_FOUND
from arbor_portal.entrypoints.schemas import (
    IdentityCreate,
    IdentityRead,
    MessageCreate,
    MessageRead,
    OpsThreadRead,
)
from arbor_portal.handlers import messages, profile
from arbor_shared.auth import Operator, operator
from arbor_shared.http import Runtime

logger = logging.getLogger(__name__)

router = APIRouter(
    prefix="/v1/ops",
    tags=["operations"],
    dependencies=[Depends(operator)],
    responses={
        400: {"description": "The body is not valid JSON"},
        401: {"description": "Missing or invalid bearer token"},
        403: {"description": "The operator role is required"},
        413: {"description": "The body exceeds the size limit"},
        422: {"description": "A field is invalid; `detail` names it"},
    },
)

ThreadId = Annotated[str, Path(max_length=128)]


@router.post(
    "/identities",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "The subject is linked to another customer"}},
)
async def link_identity(
    link: IdentityCreate, caller: Operator, runtime: Runtime
) -> IdentityRead:
    """Link an identity-provider subject to the customer it may act for."""
    async with runtime.sessions() as session, session.begin():
        linked = await profile.link_identity(
            session,
            runtime.clock,
            subject=link.subject,
            customer_id=link.customer_id,
            operator=caller.subject,
        )
    if not linked:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "the subject is linked to another customer"
        )
    logger.info("identity linked to customer %s by operator", link.customer_id)
    return IdentityRead(subject=link.subject, customer_id=link.customer_id)


@router.get("/threads")
async def list_threads(
    runtime: Runtime,
    limit: PageLimit,
    status_filter: Annotated[
        Literal["awaiting_finance", "awaiting_customer"] | None,
        Query(alias="status"),
    ] = "awaiting_finance",
    customer_id: Annotated[str | None, Query(max_length=128)] = None,
) -> list[OpsThreadRead]:
    """Threads across customers; by default those waiting for finance."""
    async with runtime.sessions() as session:
        rows = await messages.list_threads(
            session, customer_id=customer_id, status=status_filter, limit=limit
        )
    return [OpsThreadRead(**row) for row in rows]


@router.post(
    "/threads/{thread_id}/replies",
    status_code=status.HTTP_201_CREATED,
    responses=NOT_FOUND,
)
async def reply(
    thread_id: ThreadId, message: MessageCreate, runtime: Runtime
) -> MessageRead:
    """Answer a customer's thread as the finance team."""
    async with runtime.sessions() as session, session.begin():
        row = await messages.add_finance_reply(
            session, runtime.clock, thread_id=thread_id, body=message.body
        )
    return MessageRead(**row)
