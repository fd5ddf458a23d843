"""Handing decided contacts to a transport, and the rule for interrupted ones.

States of a contact: ``decided`` (committed, nothing has left the process) →
``sending`` (committed just before the hand-over) → ``sent``. A crash leaves a row in
``decided`` or ``sending``; recovery treats them differently:

- ``decided``: the transport was never called, so the contact is handed over now.
- ``sending``: the transport may or may not have taken it. SMS and letters go to a
  provider that deduplicates by the contact's Idempotency-Key, so they are handed
  over again with the same key. E-mail has no such guarantee, so the row becomes
  ``unconfirmed`` and is never resent: at most one e-mail per step, and operators see
  the unconfirmed ones on the customer's dunning page.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from arbor_dunning.adapters.messages import Message
from arbor_dunning.adapters.metrics import DunningMetrics
from arbor_dunning.adapters.senders import ChannelSenders, DeliveryRefusedError
from arbor_dunning.adapters.tables import contacts, invoices
from arbor_shared.clock import Clock
from arbor_shared.events import ActionReason, ReminderSent
from arbor_shared.failpoints import failpoint
from arbor_shared.kafka.outbox import Outbox

logger = logging.getLogger(__name__)

_MESSAGE_FIELDS = [f.name for f in fields(Message)]


@dataclass(frozen=True)
class Delivery:
    sessions: async_sessionmaker[AsyncSession]
    outbox: Outbox
    clock: Clock
    metrics: DunningMetrics
    senders: ChannelSenders
    max_attempts: int

    async def deliver(self, contact_id: int) -> None:
        """Hand one decided contact over, at most once for e-mail."""
        async with self.sessions.begin() as session:
            row = (
                await session.execute(
                    sa.update(contacts)
                    .where(contacts.c.id == contact_id, contacts.c.state == "decided")
                    .values(
                        state="sending",
                        attempts=contacts.c.attempts + 1,
                        touched_at=sa.func.now(),
                    )
                    .returning(contacts)
                )
            ).one_or_none()
        if row is None:
            return  # withdrawn by a payment, or another replica took it
        message = Message(**{k: row.message[k] for k in _MESSAGE_FIELDS})
        try:
            await self.senders.for_channel(row.channel).send(message)
        except DeliveryRefusedError as exc:
            await self._refused(row, exc)
            return
        except Exception as exc:  # noqa: BLE001 - transport boundary: outcome unknown
            await self._interrupted(row, exc)
            return
        failpoint("dunning_after_send")
        await self._confirm(row)

    async def _confirm(self, row: sa.Row[tuple[object, ...]]) -> None:
        now = self.clock.now()
        async with self.sessions.begin() as session:
            confirmed = await session.scalar(
                sa.update(contacts)
                .where(
                    contacts.c.id == row.id,
                    contacts.c.state.in_(("sending", "unconfirmed")),
                )
                .values(state="sent", sent_at=now, touched_at=sa.func.now())
                .returning(contacts.c.id)
            )
            if confirmed is None:
                return
            await session.execute(
                sa.update(invoices)
                .where(invoices.c.invoice_id == row.invoice_id)
                .values(contacted=True)
            )
            reason = ActionReason.model_validate(row.reason)
            await self.outbox.publish(
                session,
                ReminderSent(
                    customer_id=row.customer_id,
                    invoice_id=row.invoice_id,
                    step=row.step,
                    channel=row.channel,
                    template=row.message["template"],
                    balance_minor=row.balance_minor,
                    currency=row.currency,
                    sent_at=now,
                    reason=reason,
                ),
            )
        self.metrics.action(row.step, row.channel, "sent", reason.variant)

    async def _refused(
        self, row: sa.Row[tuple[object, ...]], error: DeliveryRefusedError
    ) -> None:
        failed = row.attempts >= self.max_attempts
        await self._set_state(row.id, "failed" if failed else "decided")
        variant = row.reason.get("variant")
        if failed:
            logger.error(
                "contact %s (invoice %s, step %s, %s) failed after %d attempts: %s",
                row.message_id,
                row.invoice_id,
                row.step,
                row.channel,
                row.attempts,
                error,
            )
            self.metrics.action(row.step, row.channel, "failed", variant)
            return
        logger.warning(
            "contact %s (invoice %s, step %s) refused, retrying later: %s",
            row.message_id,
            row.invoice_id,
            row.step,
            error,
        )
        self.metrics.action(row.step, row.channel, "refused", variant)

    async def _interrupted(
        self, row: sa.Row[tuple[object, ...]], error: Exception
    ) -> None:
        if ChannelSenders.retry_is_safe(row.channel):
            await self._set_state(row.id, "decided")
            return
        await self._set_state(row.id, "unconfirmed")
        logger.error(
            "contact %s (invoice %s, step %s) may or may not have been sent; "
            "not resending: %r",
            row.message_id,
            row.invoice_id,
            row.step,
            error,
        )
        self.metrics.action(
            row.step, row.channel, "unconfirmed", row.reason.get("variant")
        )

    async def _set_state(self, contact_id: int, state: str) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                sa.update(contacts)
                .where(contacts.c.id == contact_id)
                .values(state=state, touched_at=sa.func.now())
            )

    async def recover(self, lease: timedelta, limit: int) -> int:
        """Finish contacts left half-done by a process that died; return how many."""
        async with self.sessions.begin() as session:
            rows = (
                await session.execute(
                    sa.select(contacts.c.id, contacts.c.channel, contacts.c.state)
                    .where(
                        contacts.c.state.in_(("decided", "sending")),
                        contacts.c.touched_at <= sa.func.now() - lease,
                    )
                    .order_by(contacts.c.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            retry = await self._triage(session, rows)
        for contact_id in retry:
            await self.deliver(contact_id)
        return len(rows)

    async def _triage(
        self, session: AsyncSession, rows: Sequence[sa.Row[Any, Any, Any]]
    ) -> list[int]:
        retry: list[int] = []
        for contact_id, channel, state in (tuple(r) for r in rows):
            if state == "decided" or ChannelSenders.retry_is_safe(channel):
                retry.append(contact_id)
                continue
            logger.warning(
                "contact %s was being handed over when its process died; "
                "marked unconfirmed and not resent",
                contact_id,
            )
            await session.execute(
                sa.update(contacts)
                .where(contacts.c.id == contact_id)
                .values(state="unconfirmed", touched_at=sa.func.now())
            )
        if retry:
            await session.execute(
                sa.update(contacts)
                .where(contacts.c.id.in_(retry))
                .values(state="decided")
            )
        return retry
