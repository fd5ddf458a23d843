"""The receivables ledger: the one place where money is applied to invoices.

Pure rules over plain values; the handlers load and store the state around them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime


@dataclass(frozen=True)
class InvoiceState:
    invoice_id: str
    customer_id: str
    currency: str
    amount_minor: int
    issue_date: date
    due_date: date
    paid_minor: int = 0
    credited_minor: int = 0
    written_off_minor: int = 0
    voided: bool = False
    settled_at: datetime | None = None

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
    def status(self) -> str:
        if self.voided:
            return "voided"
        if self.balance_minor > 0:
            return "open"
        return "written_off" if self.written_off_minor else "settled"


def apply_payment(
    invoice: InvoiceState, amount_minor: int, at: datetime
) -> tuple[InvoiceState, int]:
    """Apply up to ``amount_minor`` to the invoice; return it and what is left over."""
    applied = min(amount_minor, max(invoice.balance_minor, 0))
    updated = replace(invoice, paid_minor=invoice.paid_minor + applied)
    return _mark_settlement(invoice, updated, at), amount_minor - applied


def _mark_settlement(
    before: InvoiceState, after: InvoiceState, at: datetime
) -> InvoiceState:
    # The settlement moment is when the balance first reaches zero; later movements
    # on a settled invoice keep it unless the invoice owes money again.
    if before.balance_minor > 0 and after.balance_minor <= 0:
        return replace(after, settled_at=at)
    if after.balance_minor > 0:
        return replace(after, settled_at=None)
    return after
