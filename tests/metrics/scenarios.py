"""Random but consistent ledger, cohort, dunning and promise histories.

Each history is what the upstream services would emit in order; tests shuffle and
duplicate it to play the broker's worst case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from hypothesis import strategies as st

from arbor_shared.events import (
    ActionReason,
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

START = date(2024, 1, 1)
CUSTOMERS = ("c1", "c2", "c3")


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=UTC)


@dataclass
class _Ledger:
    invoice_id: str
    customer_id: str
    issue: date
    due: date
    amount: int
    paid: int = 0
    credited: int = 0
    written_off: int = 0
    events: list[EventData] = field(default_factory=list)

    @property
    def balance(self) -> int:
        return self.amount - self.paid - self.credited - self.written_off

    def changed(self, day: date, status: str, cause: str) -> None:
        self.events.append(
            InvoiceBalanceChanged(
                customer_id=self.customer_id,
                invoice_id=self.invoice_id,
                currency="EUR",
                issue_date=self.issue,
                due_date=self.due,
                amount_minor=self.amount,
                paid_minor=self.paid,
                credited_minor=self.credited,
                written_off_minor=self.written_off,
                balance_minor=self.balance,
                status=status,  # type: ignore[arg-type]
                cause_event_id=cause,
                cause_event_type="Test",
                changed_at=noon(day),
            )
        )

    def settled(self, day: date, by: str) -> None:
        self.events.append(
            InvoiceSettled(
                customer_id=self.customer_id,
                invoice_id=self.invoice_id,
                currency="EUR",
                issue_date=self.issue,
                due_date=self.due,
                amount_minor=self.amount,
                paid_minor=self.paid,
                credited_minor=self.credited,
                written_off_minor=self.written_off,
                settled_by=by,  # type: ignore[arg-type]
                settled_at=noon(day),
                settled_date=day,
            )
        )


@st.composite
def invoice_history(draw: st.DrawFn, number: int) -> list[EventData]:
    """One invoice from issue through payments, credits and maybe a terminal act."""
    issue = START + timedelta(days=draw(st.integers(0, 90)))
    ledger = _Ledger(
        invoice_id=f"inv-{number}",
        customer_id=draw(st.sampled_from(CUSTOMERS)),
        issue=issue,
        due=issue + timedelta(days=draw(st.integers(0, 45))),
        amount=draw(st.integers(1, 10_000)),
    )
    day = issue
    ledger.changed(day, "open", "issued")
    for step in range(draw(st.integers(0, 3))):
        day += timedelta(days=draw(st.integers(0, 40)))
        part = min(draw(st.integers(1, 10_000)), ledger.balance)
        if draw(st.booleans()):
            ledger.paid += part
        else:
            ledger.credited += part
        ledger.changed(day, "settled" if ledger.balance == 0 else "open", f"m{step}")
        if ledger.balance == 0:
            ledger.settled(day, "payment" if ledger.paid else "credit")
            break
    ending = draw(st.sampled_from(["none", "write_off", "void", "reopen"]))
    day += timedelta(days=draw(st.integers(1, 30)))
    if ledger.balance > 0 and ending in ("write_off", "void"):
        if ending == "write_off":
            ledger.written_off += ledger.balance
            ledger.changed(day, "written_off", "wo")
        else:
            ledger.changed(day, "voided", "void")
        ledger.settled(day, ending)
    elif ledger.balance == 0 and ending == "reopen":
        ledger.events.append(
            InvoiceReopened(
                customer_id=ledger.customer_id,
                invoice_id=ledger.invoice_id,
                currency="EUR",
                balance_minor=draw(st.integers(1, ledger.amount)),
                reopened_at=noon(day),
            )
        )
    return ledger.events


@st.composite
def cohort_history(draw: st.DrawFn, customer: str) -> list[EventData]:
    moves: list[EventData] = []
    day = START
    previous: str | None = None
    for version in range(1, draw(st.integers(0, 3)) + 1):
        day += timedelta(days=draw(st.integers(0, 60)))
        cohort = draw(st.sampled_from(["punctual", "late", "risky"]))
        moves.append(
            CohortChanged(
                customer_id=customer,
                from_cohort=previous,
                to_cohort=cohort,
                definition_version=1,
                rule="test",
                features={},
                version=version,
                changed_at=noon(day),
            )
        )
        previous = cohort
    return moves


@st.composite
def dunning_history(draw: st.DrawFn, ledger: list[EventData]) -> list[EventData]:
    first = ledger[0]
    assert isinstance(first, InvoiceBalanceChanged)
    events: list[EventData] = []
    if draw(st.booleans()):
        sent = first.due_date + timedelta(days=draw(st.integers(1, 20)))
        events.append(
            ReminderSent(
                customer_id=first.customer_id,
                invoice_id=first.invoice_id,
                step="first",
                channel="email",
                template="t",
                balance_minor=first.amount_minor,
                currency="EUR",
                sent_at=noon(sent),
                reason=ActionReason(
                    policy_id="std",
                    policy_version=1,
                    variant=draw(st.sampled_from(["a", "b"])),
                    cohort="x",
                    step="first",
                ),
            )
        )
    if draw(st.booleans()):
        events.extend(draw(_promise(first)))
    return events


@st.composite
def _promise(draw: st.DrawFn, first: InvoiceBalanceChanged) -> list[EventData]:
    promise_id = f"p-{first.invoice_id}"
    promised = first.due_date + timedelta(days=draw(st.integers(0, 30)))
    made: EventData = PromiseToPayMade(
        customer_id=first.customer_id,
        promise_id=promise_id,
        invoice_id=first.invoice_id,
        currency="EUR",
        amount_minor=first.amount_minor,
        promised_date=promised,
        made_at=noon(first.due_date),
    )
    outcome = draw(st.sampled_from(["kept", "broken", "pending"]))
    if outcome == "kept":
        return [
            made,
            PromiseToPayKept(
                customer_id=first.customer_id,
                promise_id=promise_id,
                invoice_id=first.invoice_id,
                kept_at=noon(promised),
            ),
        ]
    if outcome == "broken":
        return [
            made,
            PromiseToPayBroken(
                customer_id=first.customer_id,
                promise_id=promise_id,
                invoice_id=first.invoice_id,
                promised_date=promised,
                broken_at=noon(promised + timedelta(days=1)),
            ),
        ]
    return [made]


@st.composite
def histories(draw: st.DrawFn) -> list[EventData]:
    """Every event of a small world, in the order the producers emitted them."""
    events: list[EventData] = []
    for number in range(draw(st.integers(1, 6))):
        ledger = draw(invoice_history(number))
        events.extend(ledger)
        events.extend(draw(dunning_history(ledger)))
    for customer in CUSTOMERS:
        events.extend(draw(cohort_history(customer)))
    return events
