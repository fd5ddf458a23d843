"""The scheduler: claims due steps by the service clock, decides, hands over.

Several replicas can run it at once: each claims invoices with ``FOR UPDATE SKIP
LOCKED``, so one invoice's due steps are decided by one replica at a time, and the
contact ledger's unique key is the last line of defence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from arbor_dunning import planning
from arbor_dunning.adapters.store import get_customer, lock_invoice
from arbor_dunning.adapters.tables import invoices, promises, steps
from arbor_dunning.decisions import Decider
from arbor_dunning.delivery import Delivery
from arbor_dunning.domain.calendar import start_of_day
from arbor_shared.clock import Clock
from arbor_shared.events import PromiseToPayBroken
from arbor_shared.failpoints import failpoint
from arbor_shared.kafka.outbox import Outbox

logger = logging.getLogger(__name__)


@dataclass
class Scheduler:
    sessions: async_sessionmaker[AsyncSession]
    outbox: Outbox
    clock: Clock
    decider: Decider
    delivery: Delivery
    batch_size: int = 100
    interval_seconds: float = 1.0
    lease: timedelta = timedelta(seconds=60)
    ticks: int = 0
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Tick until stopped; a failed tick is logged and retried on the next."""
        logger.info("dunning scheduler started")
        while not self._stopping.is_set():
            try:
                await self.tick()
            except Exception as exc:  # noqa: BLE001 - loop boundary: retry next tick
                logger.warning("scheduler tick failed, retrying: %r", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval_seconds)
        logger.info("dunning scheduler stopped")

    def stop(self) -> None:
        self._stopping.set()

    async def tick(self) -> int:
        """One pass: broken promises, due steps, interrupted contacts."""
        now = self.clock.now()
        await self.break_promises(now)
        ready = await self.claim_and_decide(now)
        failpoint("dunning_after_claim")
        for contact_id in ready:
            await self.delivery.deliver(contact_id)
        await self.delivery.recover(self.lease, self.batch_size)
        self.ticks += 1
        return len(ready)

    async def claim_and_decide(self, now: datetime) -> list[int]:
        """Decide the due steps of a batch of invoices no other replica holds."""
        due = sa.select(steps.c.invoice_id).where(
            steps.c.state == "planned", steps.c.due_at <= now
        )
        ready: list[int] = []
        async with self.sessions.begin() as session:
            claimed = (
                await session.scalars(
                    sa.select(invoices.c.invoice_id)
                    .where(invoices.c.invoice_id.in_(due.scalar_subquery()))
                    .order_by(invoices.c.due_date)
                    # Rows another replica holds are skipped before the limit
                    # counts, so replicas share the work instead of queueing.
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for invoice_id in claimed:
                ready += await self.decider.decide_invoice(session, invoice_id, now)
        return ready

    async def break_promises(self, now: datetime) -> None:
        """A promise whose date has ended locally with the invoice unpaid is broken."""
        async with self.sessions.begin() as session:
            rows = (
                await session.execute(
                    sa.select(promises)
                    .where(
                        promises.c.state == "open",
                        promises.c.promised_date < now.date() + timedelta(days=1),
                    )
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                await self._settle_promise(session, row, now)

    async def _settle_promise(
        self, session: AsyncSession, row: sa.Row[tuple[object, ...]], now: datetime
    ) -> None:
        customer = await get_customer(session, row.customer_id)
        invoice = await lock_invoice(session, row.invoice_id)
        if customer is None or invoice is None:
            return
        ends = start_of_day(row.promised_date + timedelta(days=1), customer.locale)
        if ends > now:
            return
        paid = invoice.status != "open" or invoice.balance_minor <= 0
        await session.execute(
            sa.update(promises)
            .where(promises.c.promise_id == row.promise_id)
            .values(state="kept" if paid else "broken")
        )
        if paid:
            return
        await self.outbox.publish(
            session,
            PromiseToPayBroken(
                customer_id=row.customer_id,
                promise_id=row.promise_id,
                invoice_id=row.invoice_id,
                promised_date=row.promised_date,
                broken_at=now,
            ),
        )
        if invoice.hold == "promised":
            await session.execute(
                sa.update(invoices)
                .where(invoices.c.invoice_id == invoice.invoice_id)
                .values(hold=None)
            )
            await planning.resume(session, self.outbox, invoice)
        logger.info(
            "promise %s on invoice %s broken; dunning resumed",
            row.promise_id,
            row.invoice_id,
        )
