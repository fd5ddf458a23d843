"""The receivables ledger: the one place where money is applied to invoices.

One :class:`CustomerLedger` holds a customer's invoices and funds (payments and credit
notes). Its rules, which finance can read here and nowhere else:

- A payment or credit note goes first to the invoices it names, each up to that
  invoice's balance. A named invoice not seen yet gets the amount reserved (parked)
  and applied the moment the invoice is issued.
- Whatever is left is unapplied cash, per customer and currency. Unapplied cash is
  always applied at once to the customer's open invoices in that currency, oldest due
  date first (then oldest issue date, then invoice id), oldest funds first. So after
  every event either the customer has no unapplied cash in a currency or no open
  invoice in it.
- A refund comes out of the payment's unapplied cash first, then out of what it
  reserved for unseen invoices, then out of its applications, the latest first; an
  invoice it takes money from is open again (``InvoiceReopened``).
- A voided credit note takes back all of itself the same way: its invoice owes
  again what the note took off, and is open again if the note had settled it.
- A void cancels an invoice and everything booked against it: its payments and
  credits become unapplied cash again. A write-off may not exceed the balance; a
  downward adjustment may not take the amount below what is already booked (issue a
  credit note instead).
- The settlement moment is when the balance reached zero in business time: the latest
  of the moments of the contributions that cover the invoice, where applying funds to
  an invoice happens at the later of the funds' receipt and the invoice's issue. It
  does not depend on the order in which the events arrived.
- Invariant per customer and currency: invoiced - payments - credits - write-offs +
  refunds = open balance - unapplied cash (voided invoices count for nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from arbor_ingest.domain.accounts import (
    Funds,
    FundsKind,
    Invoice,
    funds_key,
)
from arbor_ingest.domain.errors import EventRejectedError
from arbor_ingest.domain.movements import Accounts
from arbor_shared.events import (
    CreditNoteIssued,
    CreditNoteVoided,
    CustomerCreated,
    CustomerUpdated,
    EventData,
    InvoiceAdjusted,
    InvoiceIssued,
    InvoiceVoided,
    InvoiceWrittenOff,
    PaymentReceived,
    PaymentRefunded,
)


class CustomerLedger(Accounts):
    """A customer's invoices and funds, and the rules that move money between them."""

    def apply(self, data: EventData, *, event_id: str) -> list[EventData]:
        """Apply one event; return the facts it caused or raise EventRejectedError."""
        if isinstance(data, CustomerCreated | CustomerUpdated):
            self._set_profile(data)
            return []
        operation = _OPERATIONS.get(type(data))
        if operation is None:
            return []
        self._facts.begin()
        operation(self, data)
        facts = self._facts.finish(event_id, data)
        self._reindex()
        return facts

    # Customers -------------------------------------------------------------------

    def _set_profile(self, event: CustomerCreated | CustomerUpdated) -> None:
        try:
            ZoneInfo(event.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise EventRejectedError(
                "time_zone", f"{event.time_zone!r} is not an IANA time zone"
            ) from None
        self.time_zone = event.time_zone
        self.profile_changed = True

    # Invoices --------------------------------------------------------------------

    def _issue(self, event: InvoiceIssued) -> None:
        if event.invoice_id in self.invoices:
            raise EventRejectedError(
                "invoice_id", f"invoice {event.invoice_id} was already issued"
            )
        invoice = Invoice(
            invoice_id=event.invoice_id,
            customer_id=self.customer_id,
            currency=event.currency,
            amount_minor=event.amount_minor,
            issue_date=event.issue_date,
            due_date=event.due_date,
            issued_at=event.issued_at,
        )
        self.invoices[invoice.invoice_id] = invoice
        self._facts.touch(invoice, new=True)
        self.changed_invoices.add(invoice.invoice_id)
        released = self._release_parked(invoice)
        if invoice.amount_minor == 0:
            self._settle(invoice, "credit", event.issued_at)
        for currency in sorted({invoice.currency, *released}):
            self._sweep(currency)

    def _release_parked(self, invoice: Invoice) -> set[str]:
        """Apply what was reserved for the invoice; return the funds' currencies."""
        holders = [self.funds[k] for k in self._parked.pop(invoice.invoice_id, ())]
        # A refund may have taken a reservation back since it was indexed.
        holders = [f for f in holders if invoice.invoice_id in f.parked]
        for funds in sorted(holders, key=Funds.oldest_first):
            self._touch_funds(funds)
            amount = funds.parked.pop(invoice.invoice_id)
            # A reservation in another currency cannot pay this invoice; the money
            # stays with the customer as unapplied cash in its own currency.
            if funds.currency == invoice.currency and invoice.is_open:
                self._move(funds, invoice, min(amount, invoice.balance_minor))
        return {funds.currency for funds in holders}

    def _adjust(self, event: InvoiceAdjusted) -> None:
        invoice = self._existing(event.invoice_id, event.currency)
        amount = invoice.amount_minor + event.amount_delta_minor
        booked = invoice.paid_minor + invoice.credited_minor
        if amount < booked + invoice.written_off_minor:
            raise EventRejectedError(
                "amount_delta_minor",
                f"would take invoice {invoice.invoice_id} to {amount}, below the "
                f"{booked + invoice.written_off_minor} already booked against it; "
                "issue a credit note instead",
            )
        self._touch(invoice)
        invoice.amount_minor = amount
        self._settle_or_reopen(invoice, "credit", event.adjusted_at)
        self._sweep(invoice.currency)

    def _void(self, event: InvoiceVoided) -> None:
        invoice = self._existing(event.invoice_id, None)
        self._touch(invoice)
        was_open = invoice.is_open
        for key in invoice.applications:
            funds = self.funds[key]
            self._touch_funds(funds)
            del funds.applied[invoice.invoice_id]
        invoice.applications.clear()
        invoice.paid_minor = invoice.credited_minor = invoice.written_off_minor = 0
        invoice.voided = True
        if was_open:
            invoice.settled_at = event.voided_at.astimezone(UTC)
            invoice.settled_by = "void"
        self._sweep(invoice.currency)

    def _write_off(self, event: InvoiceWrittenOff) -> None:
        invoice = self._existing(event.invoice_id, event.currency)
        if not 0 < event.amount_minor <= invoice.balance_minor:
            raise EventRejectedError(
                "amount_minor",
                f"a write-off must be between 1 and the balance "
                f"{invoice.balance_minor} of invoice {invoice.invoice_id}",
            )
        self._touch(invoice)
        invoice.written_off_minor += event.amount_minor
        invoice.written_off_at = event.written_off_at
        self._settle_or_reopen(invoice, "write_off", event.written_off_at)

    def _existing(self, invoice_id: str, currency: str | None) -> Invoice:
        invoice = self.invoices.get(invoice_id)
        if invoice is None:
            raise EventRejectedError(
                "invoice_id", f"invoice {invoice_id} has not been issued"
            )
        if invoice.voided:
            raise EventRejectedError("invoice_id", f"invoice {invoice_id} is voided")
        if currency is not None and currency != invoice.currency:
            raise EventRejectedError(
                "currency",
                f"invoice {invoice_id} is in {invoice.currency}, not {currency}",
            )
        return invoice

    # Funds -----------------------------------------------------------------------

    def _receive(self, event: PaymentReceived) -> None:
        wanted = [(a.invoice_id, a.amount_minor) for a in event.allocations]
        self._check_allocations(event.currency, wanted, "allocations[{}].invoice_id")
        funds = self._new_funds("payment", event.payment_id, event, event.received_at)
        self._allocate(funds, wanted)

    def _credit(self, event: CreditNoteIssued) -> None:
        wanted = [(event.invoice_id, event.amount_minor)]
        self._check_allocations(event.currency, wanted, "invoice_id")
        funds = self._new_funds("credit", event.credit_note_id, event, event.issued_at)
        self._allocate(funds, wanted)

    def _void_credit(self, event: CreditNoteVoided) -> None:
        funds = self._booked(
            "credit",
            event.credit_note_id,
            "credit_note_id",
            f"credit note {event.credit_note_id} has not been issued; "
            "a void is accepted after its note",
        )
        _check_void_matches(funds, event)
        # A void takes back all the note still gives, as a refund of the whole of
        # a payment would.
        self._take_back(funds, funds.amount_minor - funds.refunded_minor)

    def _check_allocations(
        self, currency: str, wanted: list[tuple[str, int]], field: str
    ) -> None:
        seen: set[str] = set()
        for n, (invoice_id, _amount) in enumerate(wanted):
            if invoice_id in seen:
                raise EventRejectedError(
                    field.format(n), f"invoice {invoice_id} is named twice"
                )
            seen.add(invoice_id)
            invoice = self.invoices.get(invoice_id)
            if invoice is not None and invoice.currency != currency:
                raise EventRejectedError(
                    field.format(n),
                    f"invoice {invoice_id} is in {invoice.currency}, "
                    f"the money in {currency}",
                )

    def _new_funds(
        self, kind: FundsKind, funds_id: str, event: Any, at: datetime
    ) -> Funds:
        key = funds_key(kind, funds_id)
        if key in self.funds:
            raise EventRejectedError(
                "credit_note_id" if kind == "credit" else "payment_id",
                f"{kind} {funds_id} was already booked",
            )
        funds = Funds(
            kind=kind,
            funds_id=funds_id,
            customer_id=self.customer_id,
            currency=event.currency,
            amount_minor=event.amount_minor,
            received_at=at,
        )
        self.funds[key] = funds
        self._facts.touch_funds(funds, new=True)
        self.changed_funds.add(key)
        return funds

    def _allocate(self, funds: Funds, wanted: list[tuple[str, int]]) -> None:
        for invoice_id, amount in wanted:
            invoice = self.invoices.get(invoice_id)
            if invoice is None:
                funds.parked[invoice_id] = amount
                self._index_parked(funds)
            elif invoice.is_open:
                self._move(funds, invoice, min(amount, invoice.balance_minor))
        self._sweep(funds.currency)

    def _refund(self, event: PaymentRefunded) -> None:
        funds = self._booked(
            "payment",
            event.payment_id,
            "payment_id",
            f"payment {event.payment_id} has not been received; "
            "a refund is accepted after its payment",
        )
        self._check_refund(funds, event)
        self._take_back(funds, event.amount_minor)

    def _booked(
        self, kind: FundsKind, funds_id: str, field: str, missing: str
    ) -> Funds:
        funds = self.funds.get(funds_key(kind, funds_id))
        if funds is None:
            raise EventRejectedError(field, missing)
        return funds

    def _take_back(self, funds: Funds, amount: int) -> None:
        """Take ``amount`` out of the funds: free cash, then reservations, then
        applications, the latest first; an invoice it takes money from reopens."""
        self._touch_funds(funds)
        remaining = amount - min(amount, funds.free_minor)
        for invoice_id in reversed(list(funds.parked)):
            taken = min(remaining, funds.parked[invoice_id])
            funds.parked[invoice_id] -= taken
            remaining -= taken
            if not funds.parked[invoice_id]:
                del funds.parked[invoice_id]
        for invoice_id in reversed(list(funds.applied)):
            taken = min(remaining, funds.applied[invoice_id])
            if taken:
                self._unapply(funds, self.invoices[invoice_id], taken)
                remaining -= taken
        funds.refunded_minor += amount
        self._sweep(funds.currency)

    def _check_refund(self, funds: Funds, event: PaymentRefunded) -> None:
        if event.currency != funds.currency:
            raise EventRejectedError(
                "currency",
                f"payment {funds.funds_id} is in {funds.currency}, "
                f"not {event.currency}",
            )
        refundable = funds.amount_minor - funds.refunded_minor
        if event.amount_minor > refundable:
            raise EventRejectedError(
                "amount_minor",
                f"refund {event.amount_minor} exceeds the {refundable} still "
                f"refundable of payment {funds.funds_id}",
            )


def _check_void_matches(funds: Funds, event: CreditNoteVoided) -> None:
    # The invoice named is not checked: a note's credit that its invoice did not
    # need went to the customer's other open invoices.
    for field, issued in (
        ("currency", funds.currency),
        ("amount_minor", funds.amount_minor),
    ):
        if getattr(event, field) != issued:
            raise EventRejectedError(
                field,
                f"credit note {funds.funds_id} was issued with {field} {issued}, "
                f"not {getattr(event, field)}",
            )


_OPERATIONS: dict[type[EventData], Callable[[CustomerLedger, Any], None]] = {
    InvoiceIssued: CustomerLedger._issue,
    InvoiceAdjusted: CustomerLedger._adjust,
    InvoiceVoided: CustomerLedger._void,
    InvoiceWrittenOff: CustomerLedger._write_off,
    PaymentReceived: CustomerLedger._receive,
    CreditNoteIssued: CustomerLedger._credit,
    CreditNoteVoided: CustomerLedger._void_credit,
    PaymentRefunded: CustomerLedger._refund,
}
