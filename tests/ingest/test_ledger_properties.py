"""Properties of the ledger over random histories, in random order, with repeats.

Events pass through the same deduplication the handler applies (event ids, then
business identities) before reaching the ledger, and the ledger is rebuilt from its
stored rows at random points, as it is between two requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from arbor_ingest.adapters import ledger_store
from arbor_ingest.domain import identities
from arbor_ingest.domain.accounts import Funds, Invoice
from arbor_ingest.domain.errors import EventRejectedError
from arbor_ingest.domain.ledger import CustomerLedger
from arbor_shared.events import (
    Allocation,
    CreditNoteIssued,
    CustomerBalanceChanged,
    EventData,
    InvoiceBalanceChanged,
    InvoiceIssued,
    InvoiceReopened,
    InvoiceSettled,
    InvoiceVoided,
    InvoiceWrittenOff,
    PaymentReceived,
    PaymentRefunded,
)
from tests.ingest.test_ledger import (
    CUSTOMER,
    at,
    credit_voided,
    credited,
    expected_position,
    issued,
    refunded,
    written_off,
)


@dataclass
class Intake:
    """The handler's deduplication in front of one customer's ledger."""

    ledger: CustomerLedger = field(default_factory=lambda: CustomerLedger(CUSTOMER))
    event_ids: dict[str, str] = field(default_factory=dict)
    keys: dict[tuple[str, str], str] = field(default_factory=dict)
    accepted: list[EventData] = field(default_factory=list)
    facts: list[EventData] = field(default_factory=list)

    def submit(self, event_id: str, data: EventData) -> str:
        digest = data.event_type + data.model_dump_json()
        if event_id in self.event_ids:
            return "duplicate" if self.event_ids[event_id] == digest else "rejected"
        for key, _field in identities.business_keys(data):
            if key in self.keys:
                return "duplicate" if self.keys[key] == digest else "rejected"
        try:
            self.facts += self.ledger.apply(data, event_id=event_id)
        except EventRejectedError as exc:
            return f"rejected {exc.field}: {exc.reason}"
        self.event_ids[event_id] = digest
        for key, _field in identities.business_keys(data):
            self.keys[key] = digest
        self.accepted.append(data)
        return "accepted"

    def reload(self) -> None:
        """Rebuild the ledger from its rows, as the next request would load it."""
        old = self.ledger
        self.ledger = CustomerLedger(
            CUSTOMER,
            time_zone=old.time_zone,
            invoices=[
                ledger_store.invoice_from_row(ledger_store.invoice_to_row(i))
                for i in old.invoices.values()
            ],
            funds=[
                ledger_store.funds_from_row(ledger_store.funds_to_row(f))
                for f in old.funds.values()
            ],
        )


@dataclass
class World:
    """Events whose final balances can be computed directly, in any order."""

    invoices: list[InvoiceIssued]
    events: list[tuple[str, EventData]]
    pieces: dict[str, list[tuple[int, datetime, str]]]  # invoice: (amount, at, funds)
    write_offs: dict[str, InvoiceWrittenOff]
    refunds: dict[str, tuple[PaymentRefunded, str]]  # refund id: (refund, invoice)


@st.composite
def exact_worlds(draw: st.DrawFn) -> World:
    invoices: list[InvoiceIssued] = []
    pieces: dict[str, list[tuple[int, datetime, str]]] = {}
    write_offs: dict[str, InvoiceWrittenOff] = {}
    payment_parts: list[tuple[int, str, int]] = []  # (group, invoice, amount)
    credits: list[CreditNoteIssued] = []
    for n in range(draw(st.integers(1, 4))):
        invoice_id = f"inv-{n}"
        amount = draw(st.integers(0, 3_000))
        day = draw(st.integers(0, 20))
        invoices.append(
            issued(invoice_id, amount, day=day, due_in=draw(st.integers(0, 40)))
        )
        pieces[invoice_id] = []
        write_off = draw(st.integers(0, amount)) if draw(st.booleans()) else 0
        if write_off:
            write_offs[invoice_id] = written_off(invoice_id, write_off, day=day + 50)
        left = amount - write_off
        for _ in range(draw(st.integers(0, 3))):
            if left == 0:
                break
            part = draw(st.integers(1, left))
            left -= part
            if draw(st.booleans()):
                payment_parts.append((draw(st.integers(0, 3)), invoice_id, part))
            else:
                note = credited(
                    f"cn-{len(credits)}", invoice_id, part, day=draw(st.integers(0, 30))
                )
                credits.append(note)
                pieces[invoice_id].append((part, note.issued_at, "credit"))

    payments, refunds = _payments(draw, payment_parts, pieces)
    events: list[EventData] = [*invoices, *credits, *payments, *write_offs.values()]
    events += [r for r, _ in refunds.values()]
    logical = [(f"ev-{n}", e) for n, e in enumerate(events)]
    return World(invoices, _reordered(draw, logical), pieces, write_offs, refunds)


def _payments(
    draw: st.DrawFn,
    parts: list[tuple[int, str, int]],
    pieces: dict[str, list[tuple[int, datetime, str]]],
) -> tuple[list[PaymentReceived], dict[str, tuple[PaymentRefunded, str]]]:
    groups: dict[int, dict[str, int]] = {}
    for group, invoice_id, amount in parts:
        allocations = groups.setdefault(group, {})
        allocations[invoice_id] = allocations.get(invoice_id, 0) + amount
    payments: list[PaymentReceived] = []
    refunds: dict[str, tuple[PaymentRefunded, str]] = {}
    for group, allocations in groups.items():
        received = at(draw(st.integers(0, 40)))
        payment = PaymentReceived(
            customer_id=CUSTOMER,
            payment_id=f"pay-{group}",
            currency="EUR",
            amount_minor=sum(allocations.values()),
            received_at=received,
            allocations=tuple(
                Allocation(invoice_id=i, amount_minor=a) for i, a in allocations.items()
            ),
        )
        payments.append(payment)
        for invoice_id, amount in allocations.items():
            pieces[invoice_id].append((amount, received, payment.payment_id))
        if len(allocations) == 1 and draw(st.booleans()):
            (invoice_id,) = allocations
            amount = draw(st.integers(1, payment.amount_minor))
            refund = refunded(f"ref-{group}", payment.payment_id, amount, day=45)
            refunds[refund.refund_id] = (refund, invoice_id)
    return payments, refunds


def _reordered(
    draw: st.DrawFn, logical: list[tuple[str, EventData]]
) -> list[tuple[str, EventData]]:
    ordered = draw(st.permutations(logical))
    repeats = draw(st.lists(st.sampled_from(logical), max_size=4)) if logical else []
    for n, (event_id, data) in enumerate(repeats):
        # A repeat is either a redelivery (same id) or the same fact re-sent under
        # a new id (a webhook and an export reporting one payment).
        again = event_id if n % 2 == 0 else f"{event_id}-again"
        position = draw(st.integers(0, len(ordered)))
        ordered.insert(position, (again, data))
    return ordered


def _positions(world: World, wanted: EventData) -> list[int]:
    return [n for n, (_, data) in enumerate(world.events) if data == wanted]


def _arrives_after(world: World, later: EventData, earlier: EventData) -> bool:
    """True when ``later`` is sent again after ``earlier`` first arrived.

    A refused event leaves no trace, so a redelivery after its prerequisite is
    accepted.
    """
    return max(_positions(world, later)) > min(_positions(world, earlier))


@settings(max_examples=500, deadline=None)
@given(world=exact_worlds(), reload_every=st.integers(1, 8))
def test_balances_and_settlement_moments_equal_a_direct_computation(
    world: World, reload_every: int
) -> None:
    intake = Intake()
    for n, (event_id, data) in enumerate(world.events):
        intake.submit(event_id, data)
        if n % reload_every == 0:
            intake.reload()

    for invoice in world.invoices:
        expected_balance, expected_settled = _direct(world, invoice)
        state = intake.ledger.invoices[invoice.invoice_id]
        assert state.balance_minor == expected_balance, invoice.invoice_id
        assert state.settled_at == expected_settled, invoice.invoice_id
    _assert_facts_match_state(intake)


def _direct(world: World, invoice: InvoiceIssued) -> tuple[int, datetime | None]:
    contributions = world.pieces[invoice.invoice_id]
    balance = invoice.amount_minor - sum(amount for amount, _, _ in contributions)
    moments = [invoice.issued_at, *(moment for _, moment, _ in contributions)]
    write_off = world.write_offs.get(invoice.invoice_id)
    if write_off and _arrives_after(world, write_off, invoice):
        balance -= write_off.amount_minor
        moments.append(write_off.written_off_at)
    for refund, invoice_id in world.refunds.values():
        (payment,) = {
            d
            for _, d in world.events
            if isinstance(d, PaymentReceived) and d.payment_id == refund.payment_id
        }
        if invoice_id == invoice.invoice_id and _arrives_after(world, refund, payment):
            balance += refund.amount_minor
    return balance, (max(moments) if balance == 0 else None)


def _assert_facts_match_state(intake: Intake) -> None:
    latest: dict[str, InvoiceBalanceChanged] = {}
    settlements: dict[str, int] = {}
    for fact in intake.facts:
        # The ledger builds facts without validating them: consumers will.
        assert type(fact).model_validate_json(fact.model_dump_json()) == fact
        if isinstance(fact, InvoiceBalanceChanged):
            latest[fact.invoice_id] = fact
        if isinstance(fact, InvoiceSettled):
            settlements[fact.invoice_id] = settlements.get(fact.invoice_id, 0) + 1
            assert intake.ledger.invoices[fact.invoice_id].balance_minor >= 0
        if isinstance(fact, InvoiceReopened):
            settlements[fact.invoice_id] -= 1
    for invoice_id, invoice in intake.ledger.invoices.items():
        assert latest[invoice_id].balance_minor == invoice.balance_minor
        assert latest[invoice_id].status == invoice.status
        assert settlements.get(invoice_id, 0) == (invoice.settled_at is not None)


# Any history: over- and under-payments, unallocated cash, payments for invoices that
# never come, voids, two currencies.

EVENT_DAYS = st.integers(0, 60)


@st.composite
def any_event(draw: st.DrawFn, n: int) -> EventData:
    invoice_id = f"inv-{draw(st.integers(0, 5))}"
    currency = draw(st.sampled_from(["EUR", "EUR", "EUR", "JPY"]))
    kind = draw(
        st.sampled_from(["invoice", "payment", "credit", "refund", "write_off", "void"])
    )
    day = draw(EVENT_DAYS)
    amount = draw(st.integers(1, 2_000))
    if kind == "invoice":
        return issued(invoice_id, amount, day=day, cur=currency)
    if kind == "payment":
        named = draw(
            st.lists(
                st.sampled_from([f"inv-{i}" for i in range(8)]), max_size=3, unique=True
            )
        )
        allocations = [(i, draw(st.integers(1, amount))) for i in named]
        total = max(amount, sum(a for _, a in allocations))
        return PaymentReceived(
            customer_id=CUSTOMER,
            payment_id=f"pay-{n}",
            currency=currency,
            amount_minor=total,
            received_at=at(day),
            allocations=tuple(
                Allocation(invoice_id=i, amount_minor=a) for i, a in allocations
            ),
        )
    if kind == "credit":
        return credited(f"cn-{n}", invoice_id, amount, day=day)
    if kind == "refund":
        return refunded(f"ref-{n}", f"pay-{draw(st.integers(0, n))}", amount, day=day)
    if kind == "write_off":
        return written_off(invoice_id, amount, day=day)
    return InvoiceVoided(
        customer_id=CUSTOMER, invoice_id=invoice_id, reason="error", voided_at=at(day)
    )


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, EventData]]:
    size = draw(st.integers(1, 30))
    events = [(f"ev-{n}", draw(any_event(n))) for n in range(size)]
    events += _voided_notes(draw, [data for _, data in events])
    return _reordered(draw, events)


def _voided_notes(
    draw: st.DrawFn, events: list[EventData]
) -> list[tuple[str, EventData]]:
    """Voids of some of the credit notes, most with the note's own figures."""
    voids: list[tuple[str, EventData]] = []
    for note in (e for e in events if isinstance(e, CreditNoteIssued)):
        if not draw(st.booleans()):
            continue
        amount = note.amount_minor + draw(st.sampled_from([0, 0, 0, 1]))
        day = draw(EVENT_DAYS)
        void = credit_voided(note.credit_note_id, note.invoice_id, amount, day=day)
        voids.append((f"ev-void-{note.credit_note_id}", void))
    return voids


@settings(max_examples=500, deadline=None)
@given(history=histories(), reload_every=st.integers(1, 8))
def test_any_history_keeps_the_invariant_and_applies_cash_canonically(
    history: list[tuple[str, EventData]], reload_every: int
) -> None:
    intake = Intake()
    for n, (event_id, data) in enumerate(history):
        intake.submit(event_id, data)
        if n % reload_every == 0:
            intake.reload()
        for currency in ("EUR", "JPY"):
            _assert_consistent(intake, currency)
    _assert_facts_match_state(intake)


def _assert_consistent(intake: Intake, currency: str) -> None:
    ledger = intake.ledger
    open_minor, held = ledger.totals(currency)
    position = expected_position(intake.accepted, currency)
    assert open_minor - held == position
    invoices = [i for i in ledger.invoices.values() if i.currency == currency]
    funds = [f for f in ledger.funds.values() if f.currency == currency]
    assert all(i.balance_minor >= 0 for i in invoices)
    assert all(f.free_minor >= 0 and f.held_minor >= 0 for f in funds)
    assert all((i.settled_at is None) == i.is_open for i in invoices if not i.voided)
    # Unapplied cash and an open invoice in the same currency never coexist.
    if any(f.free_minor for f in funds):
        assert not any(i.is_open for i in invoices)
    if not any(f.parked for f in funds):
        assert (open_minor, held) == (max(position, 0), max(-position, 0))
    reported = [
        f
        for f in intake.facts
        if isinstance(f, CustomerBalanceChanged) and f.currency == currency
    ]
    if reported:
        assert (reported[-1].open_balance_minor, reported[-1].unapplied_cash_minor) == (
            open_minor,
            held,
        )


# Partial loading: the store loads only the rows a batch can reach.


@dataclass
class Rows:
    """One customer's stored rows, loaded the way the ledger store selects them."""

    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    funds: dict[str, dict[str, Any]] = field(default_factory=dict)
    time_zone: str = "UTC"

    def load(self, events: list[EventData]) -> CustomerLedger:
        invoices = {
            i: ledger_store.invoice_from_row(r) for i, r in self.invoices.items()
        }
        funds = {k: ledger_store.funds_from_row(r) for k, r in self.funds.items()}
        wanted_invoices, wanted_funds = working_set(invoices, funds, events)
        return CustomerLedger(
            CUSTOMER,
            time_zone=self.time_zone,
            invoices=[invoices[i] for i in sorted(wanted_invoices)],
            funds=[funds[k] for k in sorted(wanted_funds)],
        )

    def save(self, ledger: CustomerLedger) -> None:
        for invoice_id in ledger.changed_invoices:
            invoice = ledger.invoices[invoice_id]
            self.invoices[invoice_id] = ledger_store.invoice_to_row(invoice)
        for key in ledger.changed_funds:
            self.funds[key] = ledger_store.funds_to_row(ledger.funds[key])
        self.time_zone = ledger.time_zone


def working_set(
    invoices: dict[str, Invoice], funds: dict[str, Funds], events: list[EventData]
) -> tuple[set[str], set[str]]:
    """The invoice ids and funds keys ``ledger_store.get_many`` loads for ``events``.

    Open invoices, funds holding money and what the events name; the invoices a
    named payment is applied to; the funds applied to any of those invoices.
    """
    named_invoices = {i for e in events for i, _ in identities.invoices_named(e)}
    named_funds = {k for e in events for k in identities.funds_named(e)}
    wanted = {i for i, invoice in invoices.items() if invoice.is_open}
    wanted |= named_invoices & set(invoices)
    for key in named_funds & set(funds):
        wanted |= set(funds[key].applied)
    held = {k for k, item in funds.items() if item.held_minor > 0}
    held |= named_funds & set(funds)
    held |= {k for i in wanted for k in invoices[i].applications}
    return wanted, held


@st.composite
def refunding_histories(draw: st.DrawFn) -> list[tuple[str, EventData]]:
    """Any history, with refunds of its own payments, often once they were applied."""
    history = draw(histories())
    payments = [d for _, d in history if isinstance(d, PaymentReceived)]
    for n in range(draw(st.integers(0, 3)) if payments else 0):
        payment = draw(st.sampled_from(payments))
        amount = draw(st.integers(1, payment.amount_minor))
        refund = refunded(f"ref-again-{n}", payment.payment_id, amount, day=50)
        position = draw(st.integers(0, len(history)))
        history.insert(position, (f"ev-refund-{n}", refund))
    return history


@settings(max_examples=500, deadline=None)
@given(history=refunding_histories(), per_batch=st.integers(1, 5))
def test_loading_only_the_rows_a_batch_can_reach_changes_nothing(
    history: list[tuple[str, EventData]], per_batch: int
) -> None:
    whole, partial, rows = Intake(), Intake(), Rows()
    for start in range(0, len(history), per_batch):
        batch = history[start : start + per_batch]
        partial.ledger = rows.load([data for _, data in batch])
        for event_id, data in batch:
            assert partial.submit(event_id, data) == whole.submit(event_id, data)
        rows.save(partial.ledger)

    assert partial.facts == whole.facts
    assert rows.invoices == {
        i: ledger_store.invoice_to_row(v) for i, v in whole.ledger.invoices.items()
    }
    assert rows.funds == {
        k: ledger_store.funds_to_row(v) for k, v in whole.ledger.funds.items()
    }
