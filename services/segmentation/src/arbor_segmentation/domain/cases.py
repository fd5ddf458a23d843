"""How payment failures, disputes and promises to pay change a customer's state.

Each counts once per business key (payment, dispute, promise id); resolved ids are
kept, bounded, only to refuse duplicates.
"""

from __future__ import annotations

from arbor_segmentation.domain.features import MAX_CASE_IDS, CustomerState
from arbor_segmentation.domain.updates import Outcome
from arbor_shared.events import (
    DisputeOpened,
    DisputeResolved,
    PaymentFailed,
    PromiseToPayBroken,
    PromiseToPayKept,
    PromiseToPayMade,
)


def record_failure(state: CustomerState, event: PaymentFailed) -> Outcome:
    """Count the failure; the newest one gives the reason."""
    state.payment_failures += 1
    if state.last_failure_at is None or event.failed_at >= state.last_failure_at:
        state.last_failure_reason = event.reason
        state.last_failure_at = event.failed_at
    return Outcome(changed=True)


def open_dispute(state: CustomerState, event: DisputeOpened) -> Outcome:
    """A dispute counts once, and flags its invoice for the model."""
    if event.dispute_id in state.disputes:
        return Outcome()
    state.disputes[event.dispute_id] = "open"
    state.disputes_total += 1
    if invoice := state.open.get(event.invoice_id):
        invoice.disputed = True
    _trim(state.disputes, keep="open")
    return Outcome(changed=True)


def resolve_dispute(state: CustomerState, event: DisputeResolved) -> Outcome:
    """Close the dispute; ``lost`` means the business lost it."""
    status = state.disputes.get(event.dispute_id)
    if status not in (None, "open"):
        return Outcome()
    if status is None:
        state.disputes_total += 1
    state.disputes[event.dispute_id] = event.outcome
    state.disputes_lost += event.outcome == "lost"
    _trim(state.disputes, keep="open")
    return Outcome(changed=True)


def make_promise(state: CustomerState, event: PromiseToPayMade) -> Outcome:
    if event.promise_id in state.promises:
        return Outcome()
    state.promises[event.promise_id] = "made"
    state.promises_made += 1
    _trim(state.promises, keep="made")
    return Outcome(changed=True)


def end_promise(
    state: CustomerState, event: PromiseToPayKept | PromiseToPayBroken
) -> Outcome:
    """A promise is kept or broken once; one heard of only now still counts as made."""
    status = state.promises.get(event.promise_id)
    if status in ("kept", "broken"):
        return Outcome()
    if status is None:
        state.promises_made += 1
    broken = isinstance(event, PromiseToPayBroken)
    state.promises[event.promise_id] = "broken" if broken else "kept"
    state.promises_broken += broken
    _trim(state.promises, keep="made")
    return Outcome(changed=True)


def _trim(statuses: dict[str, str], *, keep: str) -> None:
    # Resolved case ids are kept only to refuse duplicates; the oldest go first.
    excess = len(statuses) - MAX_CASE_IDS
    if excess <= 0:
        return
    for case_id in [c for c, s in statuses.items() if s != keep][:excess]:
        del statuses[case_id]
