"""Moving money between a customer's funds and invoices, and keeping count.

The base of :class:`arbor_ingest.domain.ledger.CustomerLedger`: the primitives every
ledger rule is written with, and the indexes that keep them cheap.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from arbor_ingest.domain.accounts import Funds, Invoice, SettledBy
from arbor_ingest.domain.facts import FactBuilder


class Accounts:
    """A customer's invoices and funds, with the primitives that move money."""

    def __init__(
        self,
        customer_id: str,
        *,
        time_zone: str = "UTC",
        invoices: Iterable[Invoice] = (),
        funds: Iterable[Funds] = (),
    ) -> None:
        self.customer_id = customer_id
        self.time_zone = time_zone
        self.invoices = {invoice.invoice_id: invoice for invoice in invoices}
        self.funds = {item.key: item for item in funds}
        self.changed_invoices: set[str] = set()
        self.changed_funds: set[str] = set()
        self.profile_changed = False
        self._parked: dict[str, set[str]] = {}
        for item in self.funds.values():
            self._index_parked(item)
        # Through a weak reference: a ledger and its builder pointing at each other
        # would leave every ledger a batch loads, with all its invoices and funds,
        # to the cyclic collector, whose passes over them stalled requests by up to
        # a fifth of a second. Without the cycle they are freed with the batch.
        self._facts = FactBuilder(weakref.proxy(self))
        # Where unapplied cash and open balances are, so that applying cash costs
        # the same however long the customer's history.
        self._free = {k for k, f in self.funds.items() if f.free_minor}
        self._open = {i for i, invoice in self.invoices.items() if invoice.is_open}

    def _reindex(self) -> None:
        for key in self._facts.touched_funds():
            if self.funds[key].free_minor:
                self._free.add(key)
            else:
                self._free.discard(key)
        for invoice_id in self._facts.touched_invoices():
            if self.invoices[invoice_id].is_open:
                self._open.add(invoice_id)
            else:
                self._open.discard(invoice_id)

    def totals(self, currency: str) -> tuple[int, int]:
        """Open balance and unapplied cash in ``currency``, counted afresh."""
        open_minor = sum(
            i.balance_minor for i in self.invoices.values() if i.currency == currency
        )
        held = sum(f.held_minor for f in self.funds.values() if f.currency == currency)
        return open_minor, held

    def local_date(self, moment: datetime) -> date:
        """The calendar date of ``moment`` in the customer's time zone."""
        return moment.astimezone(ZoneInfo(self.time_zone)).date()

    # Moving money ----------------------------------------------------------------

    def _sweep(self, currency: str) -> None:
        # Anything whose cash or balance changed in this movement was touched; the
        # rest is as the indexes last saw it.
        candidates = self._free | self._facts.touched_funds()
        free = [
            f
            for f in map(self.funds.__getitem__, candidates)
            if f.currency == currency and f.free_minor
        ]
        if not free:
            return
        owing = map(
            self.invoices.__getitem__, self._open | self._facts.touched_invoices()
        )
        invoices = sorted(
            (i for i in owing if i.currency == currency and i.is_open),
            key=Invoice.oldest_due_first,
        )
        for funds in sorted(free, key=Funds.oldest_first):
            while funds.free_minor and invoices:
                invoice = invoices[0]
                self._move(funds, invoice, min(funds.free_minor, invoice.balance_minor))
                if not invoice.is_open:
                    invoices.pop(0)

    def _move(self, funds: Funds, invoice: Invoice, amount: int) -> None:
        self._touch(invoice)
        self._touch_funds(funds)
        funds.applied[invoice.invoice_id] = (
            funds.applied.get(invoice.invoice_id, 0) + amount
        )
        invoice.applications[funds.key] = (
            invoice.applications.get(funds.key, 0) + amount
        )
        if funds.kind == "payment":
            invoice.paid_minor += amount
        else:
            invoice.credited_minor += amount
        self._settle_or_reopen(invoice, funds.kind, None)

    def _unapply(self, funds: Funds, invoice: Invoice, amount: int) -> None:
        self._touch(invoice)
        funds.applied[invoice.invoice_id] -= amount
        invoice.applications[funds.key] -= amount
        if not funds.applied[invoice.invoice_id]:
            del funds.applied[invoice.invoice_id]
            del invoice.applications[funds.key]
        if funds.kind == "payment":
            invoice.paid_minor -= amount
        else:
            invoice.credited_minor -= amount
        self._settle_or_reopen(invoice, funds.kind, None)

    def _settle_or_reopen(
        self, invoice: Invoice, cause: SettledBy, at: datetime | None
    ) -> None:
        if invoice.balance_minor > 0:
            invoice.settled_at = invoice.settled_by = None
        elif invoice.settled_at is None:
            self._settle(invoice, cause, at)

    def _settle(self, invoice: Invoice, cause: SettledBy, at: datetime | None) -> None:
        moments = [invoice.issued_at] if at is None else [invoice.issued_at, at]
        moments += [self.funds[key].received_at for key in invoice.applications]
        if invoice.written_off_minor and invoice.written_off_at is not None:
            moments.append(invoice.written_off_at)
        # Instants leave the ledger in UTC, whatever offset the publisher used.
        invoice.settled_at, invoice.settled_by = max(moments).astimezone(UTC), cause

    # Bookkeeping -----------------------------------------------------------------

    def _touch(self, invoice: Invoice) -> None:
        self._facts.touch(invoice)
        self.changed_invoices.add(invoice.invoice_id)

    def _touch_funds(self, funds: Funds) -> None:
        self._facts.touch_funds(funds)
        self.changed_funds.add(funds.key)

    def _index_parked(self, funds: Funds) -> None:
        for invoice_id in funds.parked:
            self._parked.setdefault(invoice_id, set()).add(funds.key)
