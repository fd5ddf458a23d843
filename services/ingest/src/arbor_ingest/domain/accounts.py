"""The ledger's two kinds of account: invoices owed and funds held for a customer.

Plain mutable values; :mod:`arbor_ingest.domain.ledger` is the only code that moves
money between them, so every rule lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

FundsKind = Literal["payment", "credit"]
SettledBy = Literal["payment", "credit", "write_off", "void"]
InvoiceStatus = Literal["open", "settled", "voided", "written_off"]


@dataclass
class Invoice:
    """An invoice and everything booked against it, in its own currency."""

    invoice_id: str
    customer_id: str
    currency: str
    amount_minor: int
    issue_date: date
    due_date: date
    issued_at: datetime
    paid_minor: int = 0
    credited_minor: int = 0
    written_off_minor: int = 0
    voided: bool = False
    settled_at: datetime | None = None
    settled_by: SettledBy | None = None
    written_off_at: datetime | None = None
    applications: dict[str, int] = field(default_factory=dict)
    """Funds key to the amount of those funds applied here (mirror of Funds.applied)."""

    @property
    def balance_minor(self) -> int:
        if self.voided:
            return 0
        return (
            self.amount_minor
            - self.paid_minor
            - self.credited_minor
            - self.written_off_minor
        )

    @property
    def is_open(self) -> bool:
        return not self.voided and self.balance_minor > 0

    @property
    def status(self) -> InvoiceStatus:
        if self.voided:
            return "voided"
        if self.balance_minor > 0:
            return "open"
        return "written_off" if self.settled_by == "write_off" else "settled"

    def oldest_due_first(self) -> tuple[date, date, str]:
        """Sort key of the rule that applies unallocated cash."""
        return (self.due_date, self.issue_date, self.invoice_id)


@dataclass
class Funds:
    """A payment or a credit note: money the customer has given or been granted.

    What is neither applied, reserved for an invoice not seen yet (``parked``) nor
    refunded is unapplied cash, free to be applied to the customer's open invoices.
    """

    kind: FundsKind
    funds_id: str
    customer_id: str
    currency: str
    amount_minor: int
    received_at: datetime
    applied: dict[str, int] = field(default_factory=dict)
    parked: dict[str, int] = field(default_factory=dict)
    refunded_minor: int = 0

    @property
    def key(self) -> str:
        return funds_key(self.kind, self.funds_id)

    @property
    def held_minor(self) -> int:
        """Money held but not applied to an invoice: free plus parked."""
        return self.amount_minor - self.refunded_minor - sum(self.applied.values())

    @property
    def free_minor(self) -> int:
        return self.held_minor - sum(self.parked.values())

    def oldest_first(self) -> tuple[datetime, str]:
        return (self.received_at, self.key)


def funds_key(kind: FundsKind, funds_id: str) -> str:
    """Payments and credit notes have separate id spaces; the key keeps them apart."""
    return f"{kind}:{funds_id}"
