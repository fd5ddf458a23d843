"""Idempotent customer actions (RELIABILITY P3).

A retried POST with the same ``Idempotency-Key`` and the same body gets the first
answer again and changes nothing; the same key with a different body is refused. The
key row is written in the action's own transaction, so an action that fails leaves no
key behind and a retry runs it afresh; a concurrent duplicate waits on the row lock
and then replays.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import insert

from arbor_portal.adapters.tables import idempotency_keys
from arbor_portal.domain.errors import RuleViolationError
from arbor_portal.handlers.actions import Actor

M = TypeVar("M", bound=BaseModel)


def fingerprint(method: str, path: str, body: BaseModel) -> str:
    """What makes two requests "the same": method, path and the parsed body."""
    canonical = f"{method} {path} {body.model_dump_json()}"
    return hashlib.sha256(canonical.encode()).hexdigest()


async def once(
    actor: Actor,
    key: str | None,
    request_hash: str,
    result_type: type[M],
    act: Callable[[], Awaitable[M]],
) -> M:
    """Run ``act`` once per key; a repeat returns the stored result."""
    if key is None:
        return await act()
    claimed = await actor.session.scalar(
        insert(idempotency_keys)
        .values(
            customer_id=actor.customer_id,
            key=key,
            request_hash=request_hash,
            created_at=actor.clock.now(),
        )
        .on_conflict_do_nothing()
        .returning(idempotency_keys.c.key)
    )
    if claimed is None:
        return await _replay(actor, key, request_hash, result_type)
    result = await act()
    await actor.session.execute(
        sa.update(idempotency_keys)
        .where(
            idempotency_keys.c.customer_id == actor.customer_id,
            idempotency_keys.c.key == key,
        )
        .values(response=result.model_dump(mode="json"))
    )
    return result


async def _replay(actor: Actor, key: str, request_hash: str, result_type: type[M]) -> M:
    row = (
        await actor.session.execute(
            sa.select(
                idempotency_keys.c.request_hash, idempotency_keys.c.response
            ).where(
                idempotency_keys.c.customer_id == actor.customer_id,
                idempotency_keys.c.key == key,
            )
        )
    ).one()
    if row.request_hash != request_hash or row.response is None:
        raise RuleViolationError(
            "Idempotency-Key",
            "was already used with a different request",
            location="header",
        )
    return result_type.model_validate(row.response)
