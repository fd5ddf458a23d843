"""The batch recomputation: facts straight from the in-order event list.

It does not touch the handlers, the batch writer or the repository: it reads the
events as a nightly job would read a full export, so a streaming bug (lost, doubled or
order-dependent facts) shows up as a difference.
"""

from __future__ import annotations

from collections.abc import Sequence

from arbor_metrics.domain.facts import (
    CohortHistory,
    Facts,
    Invoice,
    Membership,
    Promise,
    Reminder,
    Snapshot,
    sort_snapshots,
)
from arbor_shared.events import (
    CohortChanged,
    EventData,
    InvoiceBalanceChanged,
    InvoiceReopened,
    InvoiceSettled,
    PromiseToPayBroken,
    PromiseToPayKept,
    PromiseToPayMade,
    ReminderSent,
)


def _snapshot(event: EventData) -> Snapshot | None:
    if isinstance(event, InvoiceBalanceChanged):
        return Snapshot(
            "balance",
            event.changed_at,
            event.changed_at.date(),
            event.cause_event_id,
            event.balance_minor,
            event.status,
            event.amount_minor,
            event.paid_minor,
            event.credited_minor,
            event.written_off_minor,
        )
    if isinstance(event, InvoiceSettled):
        return Snapshot(
            "settled",
            event.settled_at,
            event.settled_date,
            "",
            0,
            "settled",
            event.amount_minor,
            event.paid_minor,
            event.credited_minor,
            event.written_off_minor,
            event.settled_date,
            event.settled_by,
        )
    if isinstance(event, InvoiceReopened):
        return Snapshot(
            "reopened",
            event.reopened_at,
            event.reopened_at.date(),
            "",
            event.balance_minor,
            "open",
        )
    return None


def batch_facts(events: Sequence[EventData], currency: str = "EUR") -> Facts:
    """Facts of ``currency`` computed from the whole history at once."""
    heads: dict[str, InvoiceBalanceChanged | InvoiceSettled] = {}
    snapshots: dict[str, list[Snapshot]] = {}
    for event in events:
        if isinstance(event, InvoiceBalanceChanged | InvoiceSettled):
            heads.setdefault(event.invoice_id, event)
        snapshot = _snapshot(event)
        if snapshot is not None:
            snapshots.setdefault(event.invoice_id, []).append(snapshot)  # type: ignore[attr-defined]
    invoices = tuple(
        Invoice(
            head.invoice_id,
            head.customer_id,
            head.currency,
            head.issue_date,
            head.due_date,
            head.amount_minor,
            sort_snapshots(snapshots[invoice_id]),
        )
        for invoice_id, head in heads.items()
        if head.currency == currency
    )
    return Facts(invoices, _cohorts(events), _reminders(events), _promises(events))


def _cohorts(events: Sequence[EventData]) -> CohortHistory:
    return CohortHistory(
        Membership(e.customer_id, e.version, e.to_cohort, e.changed_at)
        for e in events
        if isinstance(e, CohortChanged)
    )


def _reminders(events: Sequence[EventData]) -> tuple[Reminder, ...]:
    return tuple(
        Reminder(
            e.invoice_id,
            e.step,
            e.sent_at,
            e.balance_minor,
            e.reason.policy_id,
            e.reason.variant,
        )
        for e in events
        if isinstance(e, ReminderSent)
    )


def _promises(events: Sequence[EventData]) -> tuple[Promise, ...]:
    made = {e.promise_id: e for e in events if isinstance(e, PromiseToPayMade)}
    kept = {
        e.promise_id: e.kept_at.date()
        for e in events
        if isinstance(e, PromiseToPayKept)
    }
    broken = {
        e.promise_id: e.broken_at.date()
        for e in events
        if isinstance(e, PromiseToPayBroken)
    }
    return tuple(
        Promise(pid, m.invoice_id, m.promised_date, kept.get(pid), broken.get(pid))
        for pid, m in sorted(made.items())
    )
