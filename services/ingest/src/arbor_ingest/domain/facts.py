"""The facts one ledger movement publishes, derived from what it touched.

Only the invoices and funds a movement touched are compared, and the customer's totals
are kept as running sums, so a movement costs the same for a customer with ten
invoices and one with ten thousand.

Facts are built without validating them again: every value comes from ledger state
whose events were validated when they were accepted, and validating once more cost
about a sixth of a movement. The ledger's property tests validate every fact they
see against its schema instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from arbor_ingest.domain.accounts import Funds, Invoice
from arbor_shared.events import (
    CustomerBalanceChanged,
    EventData,
    InvoiceBalanceChanged,
    InvoiceReopened,
    InvoiceSettled,
)

if TYPE_CHECKING:
    from arbor_ingest.domain.movements import Accounts

_MOMENT_FIELDS = (
    "issued_at",
    "received_at",
    "refunded_at",
    "adjusted_at",
    "voided_at",
    "written_off_at",
)


_Snapshot = tuple[int, int, int, int, bool, datetime | None]
"""What an invoice's facts depend on: amount, paid, credited, written off, voided
and settled at. A plain tuple: two are taken and compared per touched invoice."""


def _snapshot(invoice: Invoice) -> _Snapshot:
    return (
        invoice.amount_minor,
        invoice.paid_minor,
        invoice.credited_minor,
        invoice.written_off_minor,
        invoice.voided,
        invoice.settled_at,
    )


class FactBuilder:
    """Records state before a movement and turns the difference into facts."""

    def __init__(self, ledger: Accounts) -> None:
        self._ledger = ledger
        self._totals: dict[str, list[int]] = {}
        self._invoices: dict[str, tuple[_Snapshot | None, int]] = {}
        self._funds: dict[str, int] = {}

    def begin(self) -> None:
        self._invoices.clear()
        self._funds.clear()

    def touch(self, invoice: Invoice, *, new: bool = False) -> None:
        """Remember the invoice as it is before the movement changes it."""
        if invoice.invoice_id in self._invoices:
            return
        self._ensure_totals(invoice.currency, invoice.balance_minor if new else 0, 0)
        before = (None, 0) if new else (_snapshot(invoice), invoice.balance_minor)
        self._invoices[invoice.invoice_id] = before

    def touch_funds(self, funds: Funds, *, new: bool = False) -> None:
        if funds.key in self._funds:
            return
        self._ensure_totals(funds.currency, 0, funds.held_minor if new else 0)
        self._funds[funds.key] = 0 if new else funds.held_minor

    def touched_invoices(self) -> set[str]:
        return set(self._invoices)

    def touched_funds(self) -> set[str]:
        return set(self._funds)

    def finish(self, event_id: str, cause: EventData) -> list[EventData]:
        """The facts of the movement caused by ``cause``, in publishing order."""
        at = _moment(cause)
        facts: list[EventData] = []
        before_totals = {c: tuple(t) for c, t in self._totals.items()}
        for invoice_id, (before, balance) in self._invoices.items():
            invoice = self._ledger.invoices[invoice_id]
            self._totals[invoice.currency][0] += invoice.balance_minor - balance
            facts += self._invoice_facts(invoice, before, event_id, cause, at)
        for key, held in self._funds.items():
            funds = self._ledger.funds[key]
            self._totals[funds.currency][1] += funds.held_minor - held
        # In currency order: which currency a loaded ledger met first depends on
        # the rows loaded, and the facts of one movement must not.
        for currency in sorted(self._totals):
            open_minor, held_minor = self._totals[currency]
            if before_totals[currency] != (open_minor, held_minor):
                facts.append(
                    CustomerBalanceChanged.model_construct(
                        customer_id=self._ledger.customer_id,
                        currency=currency,
                        open_balance_minor=open_minor,
                        unapplied_cash_minor=held_minor,
                        changed_at=at,
                    )
                )
        return facts

    def _ensure_totals(self, currency: str, open_extra: int, held_extra: int) -> None:
        # The first touch in a currency comes before any change in it, except that a
        # new invoice or funds is already in the ledger: leave it out of "before".
        if currency not in self._totals:
            open_minor, held = self._ledger.totals(currency)
            self._totals[currency] = [open_minor - open_extra, held - held_extra]

    def _invoice_facts(
        self,
        invoice: Invoice,
        before: _Snapshot | None,
        event_id: str,
        cause: EventData,
        at: datetime,
    ) -> list[EventData]:
        if before == _snapshot(invoice):
            return []
        common = _common(invoice)
        facts: list[EventData] = [
            InvoiceBalanceChanged.model_construct(
                **common,
                balance_minor=invoice.balance_minor,
                status=invoice.status,
                cause_event_id=event_id,
                cause_event_type=cause.event_type,
                changed_at=at,
            )
        ]
        was_settled = before is not None and before[5] is not None
        if invoice.settled_at is not None and not was_settled:
            facts.append(
                InvoiceSettled.model_construct(
                    **common,
                    settled_by=invoice.settled_by or "payment",
                    settled_at=invoice.settled_at,
                    settled_date=self._ledger.local_date(invoice.settled_at),
                )
            )
        if was_settled and invoice.settled_at is None:
            facts.append(
                InvoiceReopened.model_construct(
                    customer_id=invoice.customer_id,
                    invoice_id=invoice.invoice_id,
                    currency=invoice.currency,
                    balance_minor=invoice.balance_minor,
                    reopened_at=at,
                )
            )
        return facts


def _common(invoice: Invoice) -> dict[str, Any]:
    return {
        "customer_id": invoice.customer_id,
        "invoice_id": invoice.invoice_id,
        "currency": invoice.currency,
        "issue_date": invoice.issue_date,
        "due_date": invoice.due_date,
        "amount_minor": invoice.amount_minor,
        "paid_minor": invoice.paid_minor,
        "credited_minor": invoice.credited_minor,
        "written_off_minor": invoice.written_off_minor,
    }


def _moment(cause: EventData) -> datetime:
    names = _MOMENT_FIELDS_OF.get(type(cause))
    if names is None:
        fields = type(cause).model_fields
        names = _MOMENT_FIELDS_OF[type(cause)] = [
            n for n in _MOMENT_FIELDS if n in fields
        ]
    for name in names:
        moment = getattr(cause, name)
        if isinstance(moment, datetime):
            return moment.astimezone(UTC)
    raise ValueError(f"{cause.event_type} carries no business moment")


# The moment fields each event type has, in the order above: looked up once.
_MOMENT_FIELDS_OF: dict[type[EventData], list[str]] = {}
