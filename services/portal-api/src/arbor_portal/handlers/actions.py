"""What a customer does in the portal: each action is stored and published at once.

The row and its event commit in one transaction through the outbox (RELIABILITY P1),
so dunning hears about a dispute or a promise exactly when the customer sees it saved.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_portal.adapters import readmodel
from arbor_portal.adapters.tables import disputes, payment_plans, promises
from arbor_portal.domain.account import local_today
from arbor_portal.domain.errors import ConflictError, NotFoundError, RuleViolationError
from arbor_shared.clock import Clock
from arbor_shared.events import DisputeOpened, PaymentPlanRequested, PromiseToPayMade
from arbor_shared.kafka.outbox import Outbox


@dataclass(frozen=True)
class Actor:
    """Who acts and with what: the customer from the token, the transaction, time."""

    customer_id: str
    session: AsyncSession
    outbox: Outbox
    clock: Clock


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


async def open_dispute(
    actor: Actor, *, invoice_id: str, amount_minor: int, reason: str
) -> dict[str, Any]:
    """Dispute part or all of an invoice's open balance."""
    invoice = await _open_invoice(actor, invoice_id)
    _within_balance(invoice, amount_minor)
    await _no_open_case(actor, disputes, invoice_id, "a dispute")
    event = DisputeOpened(
        customer_id=actor.customer_id,
        dispute_id=new_id("dsp"),
        invoice_id=invoice_id,
        currency=invoice["currency"],
        amount_minor=amount_minor,
        reason=reason,
        origin="portal",
        opened_at=actor.clock.now(),
    )
    row = event.model_dump(exclude={"opened_at"}) | {
        "opened_at": event.opened_at,
        "status": "open",
    }
    await actor.session.execute(sa.insert(disputes).values(row))
    await actor.outbox.publish(actor.session, event)
    return row | {"outcome": None, "resolved_at": None}


async def make_promise(
    actor: Actor,
    *,
    invoice_id: str,
    amount_minor: int,
    promised_date: date,
    horizon_days: int,
) -> dict[str, Any]:
    """Promise to pay an amount by a date; dunning holds off until then."""
    invoice = await _open_invoice(actor, invoice_id)
    _within_balance(invoice, amount_minor)
    await _promise_date_allowed(actor, promised_date, horizon_days)
    await _no_open_case(actor, promises, invoice_id, "a promise to pay")
    event = PromiseToPayMade(
        customer_id=actor.customer_id,
        promise_id=new_id("ptp"),
        invoice_id=invoice_id,
        currency=invoice["currency"],
        amount_minor=amount_minor,
        promised_date=promised_date,
        origin="portal",
        made_at=actor.clock.now(),
    )
    row = event.model_dump() | {"status": "open"}
    await actor.session.execute(sa.insert(promises).values(row))
    await actor.outbox.publish(actor.session, event)
    return row | {"closed_at": None}


async def request_payment_plan(
    actor: Actor, *, invoice_id: str, installments: int, note: str | None
) -> dict[str, Any]:
    """Ask finance to split an invoice's balance into instalments."""
    await _open_invoice(actor, invoice_id)
    await _no_open_case(actor, payment_plans, invoice_id, "a payment-plan request")
    event = PaymentPlanRequested(
        customer_id=actor.customer_id,
        request_id=new_id("ppr"),
        invoice_id=invoice_id,
        installments=installments,
        note=note,
        requested_at=actor.clock.now(),
    )
    row = event.model_dump()
    await actor.session.execute(sa.insert(payment_plans).values(row))
    await actor.outbox.publish(actor.session, event)
    return row


async def _open_invoice(actor: Actor, invoice_id: str) -> sa.RowMapping:
    # The row lock makes "no open dispute yet" and the insert one step, so two
    # simultaneous requests cannot both open one.
    invoice = await readmodel.get_invoice(
        actor.session, actor.customer_id, invoice_id, lock=True
    )
    if invoice is None:
        raise NotFoundError("invoice", invoice_id)
    if invoice["status"] != "open":
        raise ConflictError(f"invoice {invoice_id!r} is {invoice['status']}")
    if invoice["balance_minor"] is None:
        # Balances come from the ledger only; until it has spoken, any amount we
        # checked against would be a guess.
        raise ConflictError(f"the balance of invoice {invoice_id!r} is not known yet")
    if invoice["balance_minor"] <= 0:
        raise ConflictError(f"invoice {invoice_id!r} has nothing left to pay")
    return invoice


def _within_balance(invoice: sa.RowMapping, amount_minor: int) -> None:
    if amount_minor > invoice["balance_minor"]:
        raise RuleViolationError(
            "amount_minor",
            f"{amount_minor} exceeds the open balance {invoice['balance_minor']}",
        )


async def _promise_date_allowed(
    actor: Actor, promised_date: date, horizon_days: int
) -> None:
    zone = await readmodel.time_zone_of(actor.session, actor.customer_id)
    today = local_today(actor.clock.now(), zone)
    if promised_date <= today:
        raise RuleViolationError(
            "promised_date", f"must be after today ({today.isoformat()})"
        )
    latest = today + timedelta(days=horizon_days)
    if promised_date > latest:
        raise RuleViolationError(
            "promised_date", f"must be on or before {latest.isoformat()}"
        )


async def _no_open_case(
    actor: Actor, table: sa.Table, invoice_id: str, what: str
) -> None:
    query = sa.select(sa.literal(1)).where(
        table.c.customer_id == actor.customer_id, table.c.invoice_id == invoice_id
    )
    if "status" in table.c:
        query = query.where(table.c.status == "open")
    if await actor.session.scalar(query.limit(1)) is not None:
        raise ConflictError(f"invoice {invoice_id!r} already has {what} open")
