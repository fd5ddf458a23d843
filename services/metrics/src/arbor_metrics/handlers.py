"""Metrics' reactions: record each ledger, cohort, dunning and promise fact once.

Handlers never compute a KPI; they only add facts to insert-only sets, which makes
them commutative (a settlement before its balance change, a late cohort move) and
idempotent beyond the inbox (the same fact under two event ids is one row).
"""

from __future__ import annotations

from typing import Any

from arbor_metrics.adapters.batch import observe, queue
from arbor_metrics.adapters.tables import (
    cohort_memberships,
    invoice_facts,
    invoice_snapshots,
    promise_events,
    reminders,
)
from arbor_shared.events import (
    CohortChanged,
    InvoiceBalanceChanged,
    InvoiceReopened,
    InvoiceSettled,
    PromiseToPayBroken,
    PromiseToPayKept,
    PromiseToPayMade,
    ReminderSent,
)
from arbor_shared.kafka.consumer import Context, Handler


def _invoice(event: InvoiceBalanceChanged | InvoiceSettled) -> dict[str, Any]:
    return {
        "invoice_id": event.invoice_id,
        "customer_id": event.customer_id,
        "currency": event.currency,
        "amount_minor": event.amount_minor,
        "issue_date": event.issue_date,
        "due_date": event.due_date,
    }


def _components(event: InvoiceBalanceChanged | InvoiceSettled) -> dict[str, Any]:
    return {
        "amount_minor": event.amount_minor,
        "paid_minor": event.paid_minor,
        "credited_minor": event.credited_minor,
        "written_off_minor": event.written_off_minor,
    }


async def record_balance(ctx: Context, event: InvoiceBalanceChanged) -> None:
    """Keep the invoice's balance after one ledger movement."""
    queue(ctx.session, invoice_facts, _invoice(event))
    snapshot = {
        "invoice_id": event.invoice_id,
        "kind": "balance",
        "at": event.changed_at,
        "cause": event.cause_event_id,
        "effective": event.changed_at.date(),
        "balance_minor": event.balance_minor,
        "status": event.status,
        "settled_date": None,
        "settled_by": None,
    }
    queue(ctx.session, invoice_snapshots, snapshot | _components(event))
    observe(ctx.session, ctx.envelope.time)


async def record_settlement(ctx: Context, event: InvoiceSettled) -> None:
    """Keep the settlement with the customer's calendar date, as the ledger set it."""
    queue(ctx.session, invoice_facts, _invoice(event))
    snapshot = {
        "invoice_id": event.invoice_id,
        "kind": "settled",
        "at": event.settled_at,
        "cause": "",
        "effective": event.settled_date,
        "balance_minor": 0,
        "status": "settled",
        "settled_date": event.settled_date,
        "settled_by": event.settled_by,
    }
    queue(ctx.session, invoice_snapshots, snapshot | _components(event))
    observe(ctx.session, ctx.envelope.time)


async def record_reopening(ctx: Context, event: InvoiceReopened) -> None:
    """A settled invoice owes money again from ``reopened_at``."""
    snapshot = {
        "invoice_id": event.invoice_id,
        "kind": "reopened",
        "at": event.reopened_at,
        "cause": "",
        "effective": event.reopened_at.date(),
        "balance_minor": event.balance_minor,
        "status": "open",
        "amount_minor": None,
        "paid_minor": None,
        "credited_minor": None,
        "written_off_minor": None,
        "settled_date": None,
        "settled_by": None,
    }
    queue(ctx.session, invoice_snapshots, snapshot)
    observe(ctx.session, ctx.envelope.time)


async def record_cohort_move(ctx: Context, event: CohortChanged) -> None:
    """Add one version to the customer's membership history; order comes from it."""
    move = {
        "customer_id": event.customer_id,
        "version": event.version,
        "from_cohort": event.from_cohort,
        "to_cohort": event.to_cohort,
        "definition_version": event.definition_version,
        "rule": event.rule,
        "changed_at": event.changed_at,
    }
    queue(ctx.session, cohort_memberships, move)
    observe(ctx.session, ctx.envelope.time)


async def record_reminder(ctx: Context, event: ReminderSent) -> None:
    """Note the invoice entered or moved on in dunning, and under which variant."""
    reminder = {
        "invoice_id": event.invoice_id,
        "step": event.step,
        "sent_at": event.sent_at,
        "customer_id": event.customer_id,
        "currency": event.currency,
        "balance_minor": event.balance_minor,
        "policy_id": event.reason.policy_id,
        "policy_version": event.reason.policy_version,
        "variant": event.reason.variant,
        "cohort": event.reason.cohort,
    }
    queue(ctx.session, reminders, reminder)
    observe(ctx.session, ctx.envelope.time)


def _promise(
    event: PromiseToPayMade | PromiseToPayKept | PromiseToPayBroken, kind: str
) -> dict[str, Any]:
    return {
        "promise_id": event.promise_id,
        "kind": kind,
        "customer_id": event.customer_id,
        "invoice_id": event.invoice_id,
        "currency": None,
        "amount_minor": None,
        "promised_date": None,
    }


async def record_promise(ctx: Context, event: PromiseToPayMade) -> None:
    """A promise to pay an amount by a date."""
    row = _promise(event, "made") | {
        "currency": event.currency,
        "amount_minor": event.amount_minor,
        "promised_date": event.promised_date,
        "at": event.made_at,
    }
    queue(ctx.session, promise_events, row)
    observe(ctx.session, ctx.envelope.time)


async def record_promise_kept(ctx: Context, event: PromiseToPayKept) -> None:
    """The promised amount arrived in time."""
    queue(ctx.session, promise_events, _promise(event, "kept") | {"at": event.kept_at})
    observe(ctx.session, ctx.envelope.time)


async def record_promise_broken(ctx: Context, event: PromiseToPayBroken) -> None:
    """The promised date passed unpaid."""
    row = _promise(event, "broken") | {
        "promised_date": event.promised_date,
        "at": event.broken_at,
    }
    queue(ctx.session, promise_events, row)
    observe(ctx.session, ctx.envelope.time)


HANDLERS: dict[str, Handler] = {
    InvoiceBalanceChanged.event_type: record_balance,
    InvoiceSettled.event_type: record_settlement,
    InvoiceReopened.event_type: record_reopening,
    CohortChanged.event_type: record_cohort_move,
    ReminderSent.event_type: record_reminder,
    PromiseToPayMade.event_type: record_promise,
    PromiseToPayKept.event_type: record_promise_kept,
    PromiseToPayBroken.event_type: record_promise_broken,
}
