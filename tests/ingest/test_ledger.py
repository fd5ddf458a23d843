"""The receivables ledger's rules, on plain values."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from arbor_ingest.domain.errors import EventRejectedError
from arbor_ingest.domain.ledger import CustomerLedger
from arbor_shared.events import (
    Allocation,
    CreditNoteIssued,
    CreditNoteVoided,
    CustomerBalanceChanged,
    CustomerCreated,
    EventData,
    InvoiceAdjusted,
    InvoiceBalanceChanged,
    InvoiceIssued,
    InvoiceReopened,
    InvoiceSettled,
    InvoiceVoided,
    InvoiceWrittenOff,
    PaymentReceived,
    PaymentRefunded,
)

CUSTOMER = "cus-1"
T0 = datetime(2024, 3, 1, 9, tzinfo=UTC)


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def issued(
    invoice_id: str, amount: int, *, day: float = 0, due_in: int = 30, cur: str = "EUR"
) -> InvoiceIssued:
    moment = at(day)
    return InvoiceIssued(
        customer_id=CUSTOMER,
        invoice_id=invoice_id,
        currency=cur,
        amount_minor=amount,
        issue_date=moment.date(),
        due_date=moment.date() + timedelta(days=due_in),
        issued_at=moment,
    )


def paid(
    payment_id: str,
    amount: int,
    *allocations: tuple[str, int],
    day: float = 1,
    cur: str = "EUR",
) -> PaymentReceived:
    return PaymentReceived(
        customer_id=CUSTOMER,
        payment_id=payment_id,
        currency=cur,
        amount_minor=amount,
        received_at=at(day),
        allocations=tuple(
            Allocation(invoice_id=i, amount_minor=a) for i, a in allocations
        ),
    )


def credited(
    note_id: str, invoice_id: str, amount: int, *, day: float = 1
) -> CreditNoteIssued:
    return CreditNoteIssued(
        customer_id=CUSTOMER,
        credit_note_id=note_id,
        invoice_id=invoice_id,
        currency="EUR",
        amount_minor=amount,
        issued_at=at(day),
    )


def credit_voided(
    note_id: str, invoice_id: str, amount: int, *, day: float = 3
) -> CreditNoteVoided:
    return CreditNoteVoided(
        customer_id=CUSTOMER,
        credit_note_id=note_id,
        invoice_id=invoice_id,
        currency="EUR",
        amount_minor=amount,
        voided_at=at(day),
    )


def refunded(
    refund_id: str, payment_id: str, amount: int, *, day: float = 2
) -> PaymentRefunded:
    return PaymentRefunded(
        customer_id=CUSTOMER,
        refund_id=refund_id,
        payment_id=payment_id,
        currency="EUR",
        amount_minor=amount,
        refunded_at=at(day),
    )


def written_off(invoice_id: str, amount: int, *, day: float = 60) -> InvoiceWrittenOff:
    return InvoiceWrittenOff(
        customer_id=CUSTOMER,
        invoice_id=invoice_id,
        currency="EUR",
        amount_minor=amount,
        reason="uncollectible",
        written_off_at=at(day),
    )


class Book:
    """A ledger with the events it accepted and the facts it published."""

    def __init__(self, time_zone: str = "UTC") -> None:
        self.ledger = CustomerLedger(CUSTOMER, time_zone=time_zone)
        self.accepted: list[EventData] = []
        self.facts: list[EventData] = []

    def apply(self, *events: EventData) -> list[EventData]:
        emitted: list[EventData] = []
        for n, event in enumerate(events):
            emitted += self.ledger.apply(event, event_id=f"e{len(self.accepted)}-{n}")
            self.accepted.append(event)
        self.facts += emitted
        return emitted

    def balance(self, invoice_id: str) -> int:
        return self.ledger.invoices[invoice_id].balance_minor

    def settled_at(self, invoice_id: str) -> datetime | None:
        return self.ledger.invoices[invoice_id].settled_at

    def of(self, kind: type[Any]) -> list[Any]:
        return [f for f in self.facts if isinstance(f, kind)]


def expected_position(events: Iterable[EventData], currency: str = "EUR") -> int:
    """invoiced - payments - credits - write-offs + refunds, straight from events."""
    total = 0
    voided = {e.invoice_id for e in events if isinstance(e, InvoiceVoided)}
    for e in events:
        if getattr(e, "currency", currency) != currency:
            continue
        match e:
            case InvoiceIssued() if e.invoice_id not in voided:
                total += e.amount_minor
            case InvoiceAdjusted() if e.invoice_id not in voided:
                total += e.amount_delta_minor
            case InvoiceWrittenOff() if e.invoice_id not in voided:
                total -= e.amount_minor
            case PaymentReceived() | CreditNoteIssued():
                total -= e.amount_minor
            case PaymentRefunded() | CreditNoteVoided():
                total += e.amount_minor
    return total


def assert_invariant(book: Book, currency: str = "EUR") -> None:
    open_minor, unapplied = book.ledger.totals(currency)
    assert open_minor - unapplied == expected_position(book.accepted, currency)
    last = [f for f in book.of(CustomerBalanceChanged) if f.currency == currency]
    if last:
        assert (last[-1].open_balance_minor, last[-1].unapplied_cash_minor) == (
            open_minor,
            unapplied,
        )


def test_partial_payment_leaves_the_rest_open() -> None:
    book = Book()

    book.apply(issued("inv-1", 10_000), paid("pay-1", 4_000, ("inv-1", 4_000)))

    assert book.balance("inv-1") == 6_000
    assert book.settled_at("inv-1") is None
    assert book.of(InvoiceBalanceChanged)[-1].status == "open"
    assert_invariant(book)


def test_settled_date_is_the_customers_local_date() -> None:
    book = Book(time_zone="Pacific/Auckland")
    payment = paid("pay-1", 10_000, ("inv-1", 10_000), day=1.5)  # 21:00 UTC

    book.apply(issued("inv-1", 10_000), payment)

    (settled,) = book.of(InvoiceSettled)
    assert settled.settled_at == at(1.5)
    assert settled.settled_date == date(2024, 3, 3)  # already the 3rd in Auckland
    assert settled.settled_by == "payment"


def test_customer_created_sets_the_zone_of_settled_dates() -> None:
    book = Book()
    profile = CustomerCreated(
        customer_id=CUSTOMER,
        name="Kiwi Ltd",
        country="NZ",
        time_zone="Pacific/Auckland",
        currency="NZD",
        started_on=date(2024, 1, 1),
    )

    book.apply(profile, issued("inv-1", 100), paid("p", 100, ("inv-1", 100), day=1.5))

    assert book.of(InvoiceSettled)[0].settled_date == date(2024, 3, 3)
    assert book.ledger.profile_changed


def test_unknown_time_zone_is_rejected() -> None:
    profile = CustomerCreated(
        customer_id=CUSTOMER,
        name="X",
        country="NZ",
        time_zone="Mars/Olympus",
        currency="NZD",
        started_on=date(2024, 1, 1),
    )

    with pytest.raises(EventRejectedError) as caught:
        Book().apply(profile)

    assert caught.value.field == "time_zone"


def test_overpayment_is_unapplied_cash_that_pays_the_next_invoice() -> None:
    book = Book()

    book.apply(issued("inv-1", 1_000), paid("pay-1", 1_500, ("inv-1", 1_500), day=2))

    assert book.balance("inv-1") == 0
    assert book.ledger.totals("EUR") == (0, 500)
    book.apply(issued("inv-2", 800, day=10))
    assert book.balance("inv-2") == 300
    assert book.ledger.totals("EUR") == (300, 0)
    assert_invariant(book)


def test_payment_naming_several_invoices_pays_each() -> None:
    book = Book()

    book.apply(
        issued("inv-1", 1_000),
        issued("inv-2", 2_000),
        paid("pay-1", 2_500, ("inv-1", 1_000), ("inv-2", 1_500)),
    )

    assert (book.balance("inv-1"), book.balance("inv-2")) == (0, 500)
    assert [s.invoice_id for s in book.of(InvoiceSettled)] == ["inv-1"]
    assert_invariant(book)


def test_payment_before_its_invoice_is_applied_when_the_invoice_arrives() -> None:
    book = Book()

    book.apply(paid("pay-1", 1_000, ("inv-1", 1_000), day=5))
    assert book.ledger.totals("EUR") == (0, 1_000)
    book.apply(issued("inv-1", 1_000, day=0))

    assert book.balance("inv-1") == 0
    # Settled when the money was received, not when the invoice reached the ledger.
    assert book.settled_at("inv-1") == at(5)
    assert_invariant(book)


def test_reserved_money_is_not_spent_on_other_invoices() -> None:
    book = Book()

    book.apply(paid("pay-1", 1_000, ("inv-later", 1_000)), issued("inv-other", 500))

    assert book.balance("inv-other") == 500
    book.apply(issued("inv-later", 1_000))
    assert book.balance("inv-later") == 0
    assert_invariant(book)


def test_unallocated_cash_pays_the_oldest_due_invoice_first() -> None:
    book = Book()
    late_due = issued("inv-a", 1_000, day=0, due_in=60)
    early_due = issued("inv-b", 1_000, day=5, due_in=10)

    book.apply(late_due, early_due, paid("pay-1", 1_200, day=7))

    assert (book.balance("inv-a"), book.balance("inv-b")) == (800, 0)
    assert_invariant(book)


def test_settlement_moment_does_not_depend_on_arrival_order() -> None:
    events = [
        issued("inv-1", 1_000),
        paid("pay-late", 600, ("inv-1", 600), day=9),
        paid("pay-early", 400, ("inv-1", 400), day=3),
    ]
    forward, backward = Book(), Book()

    forward.apply(*events)
    backward.apply(*reversed(events))

    assert forward.settled_at("inv-1") == backward.settled_at("inv-1") == at(9)


def test_credit_note_settles_by_credit_and_excess_is_held() -> None:
    book = Book()

    book.apply(issued("inv-1", 1_000), credited("cn-1", "inv-1", 1_200))

    (settled,) = book.of(InvoiceSettled)
    assert settled.settled_by == "credit"
    assert settled.credited_minor == 1_000
    assert book.ledger.totals("EUR") == (0, 200)
    assert_invariant(book)


def test_refund_reopens_a_settled_invoice() -> None:
    book = Book()
    book.apply(issued("inv-1", 1_000), paid("pay-1", 1_000, ("inv-1", 1_000)))

    facts = book.apply(refunded("ref-1", "pay-1", 300, day=4))

    (reopened,) = [f for f in facts if isinstance(f, InvoiceReopened)]
    assert reopened.balance_minor == 300
    assert reopened.reopened_at == at(4)
    assert book.settled_at("inv-1") is None
    assert book.ledger.invoices["inv-1"].paid_minor == 700
    assert_invariant(book)


def test_refund_returns_unapplied_cash_first() -> None:
    book = Book()
    book.apply(issued("inv-1", 1_000), paid("pay-1", 1_300, ("inv-1", 1_300)))

    facts = book.apply(refunded("ref-1", "pay-1", 300))

    assert book.balance("inv-1") == 0
    assert not [f for f in facts if isinstance(f, InvoiceReopened)]
    assert book.ledger.totals("EUR") == (0, 0)
    assert_invariant(book)


def test_refund_above_what_is_left_of_the_payment_is_rejected() -> None:
    book = Book()
    book.apply(issued("inv-1", 1_000), paid("pay-1", 1_000, ("inv-1", 1_000)))
    book.apply(refunded("ref-1", "pay-1", 600))

    with pytest.raises(EventRejectedError) as caught:
        book.apply(refunded("ref-2", "pay-1", 500))

    assert caught.value.field == "amount_minor"
    assert "400 still refundable" in caught.value.reason


def test_refund_of_a_payment_not_received_is_rejected() -> None:
    with pytest.raises(EventRejectedError) as caught:
        Book().apply(refunded("ref-1", "pay-unknown", 100))

    assert caught.value.field == "payment_id"


def test_voided_credit_note_reopens_the_invoice_it_settled() -> None:
    book = Book()
    book.apply(
        issued("inv-1", 1_000),
        paid("pay-1", 600, ("inv-1", 600)),
        credited("cn-1", "inv-1", 400),
    )

    facts = book.apply(credit_voided("cn-1", "inv-1", 400, day=5))

    (reopened,) = [f for f in facts if isinstance(f, InvoiceReopened)]
    assert (reopened.balance_minor, reopened.reopened_at) == (400, at(5))
    invoice = book.ledger.invoices["inv-1"]
    assert (invoice.paid_minor, invoice.credited_minor) == (600, 0)
    assert book.settled_at("inv-1") is None
    assert_invariant(book)


def test_voided_credit_note_takes_back_what_went_to_other_invoices() -> None:
    book = Book()
    book.apply(
        issued("inv-1", 1_000, due_in=30),
        issued("inv-2", 500, due_in=40),
        credited("cn-1", "inv-1", 1_300),
    )
    assert (book.balance("inv-1"), book.balance("inv-2")) == (0, 200)

    book.apply(credit_voided("cn-1", "inv-1", 1_300))

    assert (book.balance("inv-1"), book.balance("inv-2")) == (1_000, 500)
    assert book.ledger.totals("EUR") == (1_500, 0)
    assert_invariant(book)


def test_voided_credit_note_leaves_payments_to_pay_the_invoice_again() -> None:
    book = Book()
    book.apply(
        issued("inv-1", 1_000),
        credited("cn-1", "inv-1", 1_000),
        paid("pay-1", 700),
    )
    assert book.ledger.totals("EUR") == (0, 700)

    book.apply(credit_voided("cn-1", "inv-1", 1_000))

    assert book.balance("inv-1") == 300
    assert book.ledger.invoices["inv-1"].paid_minor == 700
    assert_invariant(book)


def test_void_of_a_credit_note_not_issued_or_with_other_figures_is_rejected() -> None:
    book = Book()
    with pytest.raises(EventRejectedError) as unknown:
        book.apply(credit_voided("cn-1", "inv-1", 400))
    book.apply(issued("inv-1", 1_000), credited("cn-1", "inv-1", 400))
    with pytest.raises(EventRejectedError) as different:
        book.apply(credit_voided("cn-1", "inv-1", 500))

    assert unknown.value.field == "credit_note_id"
    assert "has not been issued" in unknown.value.reason
    assert different.value.field == "amount_minor"
    assert "issued with amount_minor 400, not 500" in different.value.reason
    assert book.balance("inv-1") == 600


def test_write_off_closes_the_invoice_as_written_off() -> None:
    book = Book()
    book.apply(issued("inv-1", 1_000), paid("pay-1", 400, ("inv-1", 400)))

    book.apply(written_off("inv-1", 600))

    (settled,) = book.of(InvoiceSettled)
    assert settled.settled_by == "write_off"
    assert settled.settled_at == at(60)
    assert book.of(InvoiceBalanceChanged)[-1].status == "written_off"
    assert_invariant(book)


def test_write_off_above_the_balance_is_rejected() -> None:
    book = Book()
    book.apply(issued("inv-1", 1_000), paid("pay-1", 400, ("inv-1", 400)))

    with pytest.raises(EventRejectedError) as caught:
        book.apply(written_off("inv-1", 601))

    assert caught.value.field == "amount_minor"
    assert book.balance("inv-1") == 600


def test_void_returns_payments_to_unapplied_cash_for_other_invoices() -> None:
    book = Book()
    book.apply(
        issued("inv-1", 1_000),
        issued("inv-2", 700, day=2),
        paid("pay-1", 1_000, ("inv-1", 1_000)),
    )
    void = InvoiceVoided(
        customer_id=CUSTOMER, invoice_id="inv-1", reason="duplicate", voided_at=at(9)
    )

    book.apply(void)

    assert book.of(InvoiceBalanceChanged)[-2].status == "voided"
    assert book.balance("inv-2") == 0
    assert book.ledger.totals("EUR") == (0, 300)
    assert_invariant(book)


def test_upward_adjustment_reopens_and_downward_cannot_undercut_payments() -> None:
    book = Book()
    book.apply(issued("inv-1", 1_000), paid("pay-1", 1_000, ("inv-1", 1_000)))

    def adjusted(delta: int) -> InvoiceAdjusted:
        return InvoiceAdjusted(
            customer_id=CUSTOMER,
            invoice_id="inv-1",
            currency="EUR",
            amount_delta_minor=delta,
            reason="price change",
            adjusted_at=at(3),
        )

    facts = book.apply(adjusted(250))
    assert [type(f).__name__ for f in facts] == [
        "InvoiceBalanceChanged",
        "InvoiceReopened",
        "CustomerBalanceChanged",
    ]
    with pytest.raises(EventRejectedError) as caught:
        book.apply(adjusted(-300))
    assert caught.value.field == "amount_delta_minor"
    assert_invariant(book)


def test_money_in_another_currency_than_the_invoice_is_rejected() -> None:
    book = Book()
    book.apply(issued("inv-1", 1_000, cur="USD"))

    with pytest.raises(EventRejectedError) as caught:
        book.apply(paid("pay-1", 1_000, ("inv-1", 1_000), cur="EUR"))

    assert caught.value.field == "allocations[0].invoice_id"
    assert "is in USD, the money in EUR" in caught.value.reason
    assert book.ledger.funds == {}


def test_currencies_are_never_mixed() -> None:
    book = Book()

    book.apply(issued("inv-usd", 1_000, cur="USD"), paid("pay-eur", 500))

    assert book.balance("inv-usd") == 1_000
    assert book.ledger.totals("EUR") == (0, 500)
    assert_invariant(book, "USD")
    assert_invariant(book, "EUR")


def test_payment_id_and_invoice_id_cannot_be_booked_twice() -> None:
    book = Book()
    book.apply(issued("inv-1", 1_000), paid("pay-1", 100))

    with pytest.raises(EventRejectedError) as invoice_again:
        book.apply(issued("inv-1", 1_000))
    with pytest.raises(EventRejectedError) as payment_again:
        book.apply(paid("pay-1", 100))

    assert invoice_again.value.field == "invoice_id"
    assert payment_again.value.field == "payment_id"
    assert book.ledger.totals("EUR") == (900, 0)


def test_a_ledger_is_freed_as_soon_as_it_is_dropped() -> None:
    # With the collector off, only reference counting frees: a ledger caught in a
    # reference cycle would wait for the collector's next pass, and those passes
    # over every ledger a request loaded stalled single-event requests.
    gc.disable()
    try:
        ledger = CustomerLedger(CUSTOMER)
        ledger.apply(issued("inv-1", 10_000), event_id="e1")
        ledger.apply(paid("pay-1", 4_000, ("inv-1", 4_000)), event_id="e2")
        alive = weakref.ref(ledger)

        del ledger

        assert alive() is None
    finally:
        gc.enable()
