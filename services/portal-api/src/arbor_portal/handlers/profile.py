"""Billing details and identity links: who the customer is and how to reach them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_portal.adapters import readmodel
from arbor_portal.adapters.tables import customers, identities, notifications
from arbor_portal.handlers.actions import Actor, new_id
from arbor_shared.clock import Clock
from arbor_shared.events import BillingDetailsChanged

_PUBLISHED = ("email", "preferred_channel", "language", "time_zone")


async def change_billing_details(
    actor: Actor, changes: dict[str, Any]
) -> dict[str, Any]:
    """Apply and publish the changes; a new e-mail notifies both addresses."""
    current = await readmodel.get_customer(actor.session, actor.customer_id)
    before = dict(current) if current is not None else {}
    changed = {k: v for k, v in changes.items() if before.get(k) != v}
    now = actor.clock.now()
    if not changed:
        return before or {"customer_id": actor.customer_id}
    values = changed | {"profile_at": now}
    statement = insert(customers).values(customer_id=actor.customer_id, **values)
    await actor.session.execute(
        statement.on_conflict_do_update(
            index_elements=[customers.c.customer_id], set_=values
        )
    )
    if "email" in changed:
        await _notify_email_change(actor, before.get("email"), changed["email"])
    event = BillingDetailsChanged(
        customer_id=actor.customer_id,
        changed_fields=tuple(sorted(changed)),
        changed_at=now,
        **{k: v for k, v in changed.items() if k in _PUBLISHED},
    )
    await actor.outbox.publish(actor.session, event)
    return before | values | {"customer_id": actor.customer_id}


async def _notify_email_change(actor: Actor, old: str | None, new: str | None) -> None:
    # Both addresses hear of the change, so a hijacked account that redirects its
    # invoices is noticed by the real owner (OWASP API6, sensitive business flows).
    rows = [
        {"recipient": address, "role": role}
        for address, role in ((old, "old_address"), (new, "new_address"))
        if address
    ]
    if not rows:
        return
    await actor.session.execute(
        sa.insert(notifications),
        [
            row
            | {
                "notification_id": new_id("ntf"),
                "customer_id": actor.customer_id,
                "kind": "billing_email_changed",
                "created_at": actor.clock.now(),
            }
            for row in rows
        ],
    )


async def link_identity(
    session: AsyncSession,
    clock: Clock,
    *,
    subject: str,
    customer_id: str,
    operator: str,
) -> bool:
    """Link a token subject to a customer; False when it already is to another."""
    statement = (
        insert(identities)
        .values(
            subject=subject,
            customer_id=customer_id,
            linked_at=clock.now(),
            linked_by=operator,
        )
        .on_conflict_do_nothing()
    )
    await session.execute(statement)
    linked = await readmodel.customer_for_subject(session, subject)
    return linked == customer_id
