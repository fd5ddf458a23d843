"""Deciding what a due step does, inside the transaction that claimed it.

A decision is committed before anything leaves the process: fees, incentives and
escalations are events in the outbox of that same transaction, and a message becomes
a contact-ledger row in state ``decided`` whose unique key (invoice, policy version,
step, channel) makes a second contact for the step impossible.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_dunning.adapters.messages import MessageFacts, incentive_text, render
from arbor_dunning.adapters.metrics import DunningMetrics
from arbor_dunning.adapters.policy_document import step_from_spec
from arbor_dunning.adapters.store import (
    Customer,
    Invoice,
    get_customer,
    lock_invoice,
    policy_by_version,
    recent_contacts,
)
from arbor_dunning.adapters.tables import contacts, steps
from arbor_dunning.charges import assess_fee, offer_incentive, valid_until
from arbor_dunning.domain.calendar import after_weekly_cap, local_date
from arbor_dunning.domain.planner import (
    DueStep,
    triage_due,
)
from arbor_dunning.domain.policy import Policy
from arbor_dunning.planning import reason_for, stop
from arbor_shared.events import (
    ActionReason,
    EscalationRaised,
    ReminderCancelled,
)
from arbor_shared.events.dunning import CancelReason
from arbor_shared.kafka.outbox import Outbox

logger = logging.getLogger(__name__)

_MESSAGE_IDS = uuid.UUID("5f0c1a52-4a8e-4d43-9a37-0d1f3e2b7c11")


@dataclass(frozen=True)
class Decider:
    outbox: Outbox
    metrics: DunningMetrics

    async def decide_invoice(
        self, session: AsyncSession, invoice_id: str, now: datetime
    ) -> list[int]:
        """Act on the invoice's due steps; return contact ids ready to hand over."""
        invoice = await lock_invoice(session, invoice_id)
        customer = await get_customer(session, invoice.customer_id) if invoice else None
        if invoice is None or customer is None:
            return []
        if not invoice.collectable:
            # Defensive: the handlers stop steps as the facts change, but a row that
            # slipped through is never acted on for an invoice that owes nothing.
            if invoice.hold:
                reason: CancelReason = (
                    "disputed" if invoice.hold == "disputed" else "promised"
                )
                await stop(session, self.outbox, invoice, reason, now, pause=True)
            else:
                await stop(session, self.outbox, invoice, "settled", now, pause=False)
            return []
        due = await _due_rows(session, invoice_id, now)
        if not due:
            return []
        policy = await policy_by_version(session, due[-1].policy_version)
        assert policy is not None
        chosen, missed = triage_due(
            [DueStep(r.id, r.offset_days, r.due_at) for r in due],
            now=now,
            catch_up=policy.catch_up,
        )
        await self._miss(session, invoice, due, [m.key for m in missed], now)
        if chosen is None:
            return []
        row = next(r for r in due if r.id == chosen.key)
        contact = await self._act(session, invoice, customer, policy, row, now)
        return [contact] if contact is not None else []

    async def _miss(
        self,
        session: AsyncSession,
        invoice: Invoice,
        due: list[sa.Row[tuple[object, ...]]],
        keys: list[int],
        now: datetime,
    ) -> None:
        for row in (r for r in due if r.id in keys):
            await session.execute(
                sa.update(steps)
                .where(steps.c.id == row.id)
                .values(state="cancelled", cancel_reason="missed_during_outage")
            )
            await self.outbox.publish(
                session,
                ReminderCancelled(
                    customer_id=invoice.customer_id,
                    invoice_id=invoice.invoice_id,
                    step=row.step,
                    cancel_reason="missed_during_outage",
                    cancelled_at=now,
                ),
            )
            self.metrics.action(row.step, row.channel, "missed", row.variant)

    async def _act(
        self,
        session: AsyncSession,
        invoice: Invoice,
        customer: Customer,
        policy: Policy,
        row: sa.Row[tuple[object, ...]],
        now: datetime,
    ) -> int | None:
        step = step_from_spec(row.spec["step"])
        if step.channel != "task":
            recent = await recent_contacts(session, customer.customer_id, now)
            allowed = after_weekly_cap(now, recent, customer.locale, policy.rules)
            if allowed > now:
                # Quiet hours, a closed day or a full week: the same step, later.
                await session.execute(
                    sa.update(steps).where(steps.c.id == row.id).values(due_at=allowed)
                )
                self.metrics.action(step.name, step.channel, "deferred", row.variant)
                return None
        facts = _facts(invoice, customer, now)
        reason = reason_for(policy, row.cohort, row.variant, step.name, facts)
        fee_minor = await assess_fee(
            self.outbox, session, invoice, customer, step, reason, now
        )
        await offer_incentive(
            self.outbox, session, invoice, customer, step, reason, now
        )
        await session.execute(
            sa.update(steps).where(steps.c.id == row.id).values(state="done")
        )
        if step.channel == "task":
            await self._escalate(session, invoice, customer, row, reason, now)
            return None
        facts_for_message = MessageFacts(
            customer_name=customer.name,
            invoice_number=invoice.number or invoice.invoice_id,
            currency=invoice.currency,
            amount_minor=invoice.amount_minor,
            balance_minor=invoice.balance_minor,
            due_date=invoice.due_date,
            today=local_date(now, customer.locale),
            incentive=incentive_text(
                step.incentive, customer.language, valid_until(step, customer, now)
            ),
            fee_minor=fee_minor,
            changes=tuple(row.spec.get("changes", ())),
        )
        return await self._record(
            session, invoice, customer, row, reason, facts_for_message, now
        )

    async def _record(
        self,
        session: AsyncSession,
        invoice: Invoice,
        customer: Customer,
        row: sa.Row[tuple[object, ...]],
        reason: ActionReason,
        facts: MessageFacts | None,
        now: datetime,
        *,
        state: str = "decided",
    ) -> int | None:
        key = f"{invoice.invoice_id}/{row.policy_version}/{row.step}/{row.channel}"
        message_id = str(uuid.uuid5(_MESSAGE_IDS, key))
        subject, body = ("", "")
        if facts is not None:
            subject, body = render(row.template, customer.language, facts)
        values = {
            "invoice_id": invoice.invoice_id,
            "customer_id": invoice.customer_id,
            "policy_version": row.policy_version,
            "step": row.step,
            "channel": row.channel,
            "message_id": message_id,
            "state": state,
            "message": {
                "message_id": message_id,
                "channel": row.channel,
                "customer_id": invoice.customer_id,
                "invoice_id": invoice.invoice_id,
                "recipient": customer.email if row.channel == "email" else None,
                "language": customer.language,
                "subject": subject,
                "body": body,
                "template": row.template,
            },
            "reason": reason.model_dump(mode="json"),
            "balance_minor": invoice.balance_minor,
            "currency": invoice.currency,
            "decided_at": now,
            "sent_at": now if state == "sent" else None,
        }
        statement = insert(contacts).values(values)
        # The unique key is the guarantee; a contact withdrawn before hand-over (a
        # pause) may be decided again, one in any other state never.
        contact_id: int | None = await session.scalar(
            statement.on_conflict_do_update(
                index_elements=["invoice_id", "policy_version", "step", "channel"],
                set_={k: statement.excluded[k] for k in ("state", "message", "reason")}
                | {"decided_at": now, "touched_at": sa.func.now()},
                where=contacts.c.state == "cancelled",
            ).returning(contacts.c.id)
        )
        if contact_id is None:
            logger.warning(
                "step %s of invoice %s already has a contact: not deciding it again",
                row.step,
                invoice.invoice_id,
            )
        return contact_id

    async def _escalate(
        self,
        session: AsyncSession,
        invoice: Invoice,
        customer: Customer,
        row: sa.Row[tuple[object, ...]],
        reason: ActionReason,
        now: datetime,
    ) -> None:
        recorded = await self._record(
            session, invoice, customer, row, reason, None, now, state="sent"
        )
        if recorded is None:
            return
        await self.outbox.publish(
            session,
            EscalationRaised(
                customer_id=invoice.customer_id,
                invoice_id=invoice.invoice_id,
                balance_minor=invoice.balance_minor,
                currency=invoice.currency,
                raised_at=now,
                reason=reason,
            ),
        )
        self.metrics.action(row.step, row.channel, "sent", row.variant)


async def _due_rows(
    session: AsyncSession, invoice_id: str, now: datetime
) -> list[sa.Row[tuple[object, ...]]]:
    return list(
        (
            await session.execute(
                sa.select(steps)
                .where(
                    steps.c.invoice_id == invoice_id,
                    steps.c.state == "planned",
                    steps.c.due_at <= now,
                )
                .order_by(steps.c.offset_days)
            )
        ).all()
    )


def _facts(invoice: Invoice, customer: Customer, now: datetime) -> dict[str, object]:
    today = local_date(now, customer.locale)
    return {
        "balance_minor": invoice.balance_minor,
        "currency": invoice.currency,
        "due_date": invoice.due_date.isoformat(),
        "days_past_due": (today - invoice.due_date).days,
        "time_zone": customer.locale.time_zone,
    }
