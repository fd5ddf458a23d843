"""The facts KPIs are computed from, and each invoice's state as of a day.

The store keeps every ledger fact about an invoice as a set (insert-only, keyed by the
fact itself), so arrival order and redelivery cannot change it; the state on any day
is a fold of the facts that belong to that day or earlier, in the order they happened.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

SnapshotKind = Literal["balance", "settled", "reopened"]

# A settlement recorded at the same instant as a balance movement comes after it, and
# a reopening after both: that is the order the ledger emits them in.
_KIND_RANK = {"balance": 0, "settled": 1, "reopened": 2}
_TERMINAL_STATUS = {"write_off": "written_off", "void": "voided"}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One ledger fact about an invoice: its components after a movement."""

    kind: SnapshotKind
    at: datetime
    effective: date
    cause: str
    balance_minor: int
    status: str
    amount_minor: int | None = None
    paid_minor: int | None = None
    credited_minor: int | None = None
    written_off_minor: int | None = None
    settled_date: date | None = None
    settled_by: str | None = None

    @property
    def order(self) -> tuple[datetime, int, str]:
        return (self.at, _KIND_RANK[self.kind], self.cause)


@dataclass(frozen=True, slots=True)
class Invoice:
    """What never changes about an invoice, and every ledger fact about it."""

    invoice_id: str
    customer_id: str
    currency: str
    issue_date: date
    due_date: date
    amount_minor: int
    snapshots: tuple[Snapshot, ...] = ()


@dataclass(frozen=True, slots=True)
class InvoiceState:
    """An invoice as the ledger saw it at the end of one day."""

    invoice_id: str
    customer_id: str
    currency: str
    issue_date: date
    due_date: date
    amount_minor: int
    paid_minor: int
    credited_minor: int
    written_off_minor: int
    balance_minor: int
    status: str
    settled_date: date | None
    settled_by: str | None

    @property
    def exclusion(self) -> str | None:
        """Why the BRIEF's default exclusions drop this invoice, if they do."""
        if self.status == "voided" or self.settled_by == "void":
            return "voided"
        written_off = self.status == "written_off" or self.settled_by == "write_off"
        if written_off or self.written_off_minor > 0:
            return "written_off"
        if self.amount_minor > 0 and self.credited_minor >= self.amount_minor:
            return "fully_credited"
        return None

    @property
    def open_minor(self) -> int:
        """The receivable still owed; an overpayment is unapplied cash, not AR."""
        return max(self.balance_minor, 0)


def state_as_of(invoice: Invoice, day: date) -> InvoiceState | None:
    """The invoice at the end of ``day``, or None if it was not issued yet."""
    if invoice.issue_date > day:
        return None
    # A plain fold over locals: this runs for every invoice on every KPI read.
    amount, paid, credited, written_off = invoice.amount_minor, 0, 0, 0
    balance, status = invoice.amount_minor, "open"
    settled_date: date | None = None
    settled_by: str | None = None
    for snapshot in invoice.snapshots:
        if snapshot.effective > day:
            continue
        if snapshot.amount_minor is not None:
            amount = snapshot.amount_minor
        if snapshot.paid_minor is not None:
            paid = snapshot.paid_minor
        if snapshot.credited_minor is not None:
            credited = snapshot.credited_minor
        if snapshot.written_off_minor is not None:
            written_off = snapshot.written_off_minor
        balance = snapshot.balance_minor
        if snapshot.kind == "settled":
            settled_by = snapshot.settled_by or "payment"
            status = _TERMINAL_STATUS.get(settled_by, "settled")
            settled_date = snapshot.settled_date
        elif snapshot.kind == "reopened" or balance > 0:
            status, settled_date, settled_by = "open", None, None
        else:
            # A zero balance without its InvoiceSettled yet: the settlement fact,
            # when it arrives, carries the customer's calendar date and wins.
            status = snapshot.status
            settled_date = settled_date or snapshot.effective
    return InvoiceState(
        invoice_id=invoice.invoice_id,
        customer_id=invoice.customer_id,
        currency=invoice.currency,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        amount_minor=amount,
        paid_minor=paid,
        credited_minor=credited,
        written_off_minor=written_off,
        balance_minor=balance,
        status=status,
        settled_date=settled_date,
        settled_by=settled_by,
    )


def sort_snapshots(snapshots: Iterable[Snapshot]) -> tuple[Snapshot, ...]:
    """Facts in the order they happened, whatever order they arrived in."""
    return tuple(sorted(snapshots, key=lambda s: s.order))


@dataclass(frozen=True)
class Membership:
    """One cohort move of a customer; ``version`` orders the moves."""

    customer_id: str
    version: int
    to_cohort: str
    changed_at: datetime


UNASSIGNED = "unassigned"


class CohortHistory:
    """Which cohort each customer was in on any day, from the membership moves."""

    def __init__(self, memberships: Iterable[Membership]) -> None:
        moves: dict[str, list[Membership]] = {}
        for move in memberships:
            moves.setdefault(move.customer_id, []).append(move)
        self._moves = {
            customer: sorted(found, key=lambda m: m.version)
            for customer, found in moves.items()
        }

    def cohort_on(self, customer_id: str, day: date) -> str:
        """The newest version in effect by the end of ``day``; stale ones lose."""
        current = UNASSIGNED
        for move in self._moves.get(customer_id, ()):
            if move.changed_at.date() <= day:
                current = move.to_cohort
        return current

    def intervals(
        self, customer_id: str
    ) -> list[tuple[str, datetime, datetime | None]]:
        """Membership history as (cohort, valid_from, valid_to) in version order."""
        moves = self._moves.get(customer_id, [])
        ends: Sequence[datetime | None] = [m.changed_at for m in moves[1:]] + [None]
        return [
            (m.to_cohort, m.changed_at, end) for m, end in zip(moves, ends, strict=True)
        ]

    def counts_on(self, day: date) -> dict[str, int]:
        """Customers per cohort at the end of ``day`` (customers with a history)."""
        counts: dict[str, int] = {}
        for customer in self._moves:
            cohort = self.cohort_on(customer, day)
            counts[cohort] = counts.get(cohort, 0) + 1
        return counts


@dataclass(frozen=True)
class Reminder:
    """A reminder dunning sent, with the policy variant that chose it."""

    invoice_id: str
    step: str
    sent_at: datetime
    balance_minor: int
    policy_id: str
    variant: str | None


@dataclass(frozen=True)
class Promise:
    """A promise to pay and how it ended, assembled from its three events."""

    promise_id: str
    invoice_id: str | None
    promised_date: date | None
    kept_on: date | None
    broken_on: date | None


@dataclass(frozen=True)
class Facts:
    """Everything the KPIs of one currency are computed from."""

    invoices: tuple[Invoice, ...]
    cohorts: CohortHistory
    reminders: tuple[Reminder, ...] = ()
    promises: tuple[Promise, ...] = ()
