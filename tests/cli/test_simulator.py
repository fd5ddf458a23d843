"""The demo company: deterministic, time-ordered, and shaped by its archetypes."""

from __future__ import annotations

from datetime import date
from statistics import mean

from arbor_cli.publisher import event_id
from arbor_cli.simulator import Archetype, Simulation
from arbor_shared.events import (
    ClockAdvanced,
    EventData,
    InvoiceIssued,
    PaymentReceived,
)


def _events(seed: int = 3) -> list[EventData]:
    return list(Simulation(seed=seed, customers=300, start=date(2025, 1, 1)).events())


def test_same_seed_gives_the_same_company_and_the_same_event_ids() -> None:
    first, second = _events(), _events()
    assert [event_id(e) for e in first] == [event_id(e) for e in second]
    assert [event_id(e) for e in first] != [event_id(e) for e in _events(seed=4)]


def test_clock_watermarks_only_move_forward_and_precede_later_events() -> None:
    watermarks = [e.now for e in _events() if isinstance(e, ClockAdvanced)]
    assert watermarks == sorted(watermarks)
    assert len(set(watermarks)) == len(watermarks)


def test_every_payment_is_for_an_invoice_issued_before_it() -> None:
    issued: set[str] = set()
    for event in _events():
        if isinstance(event, InvoiceIssued):
            issued.add(event.invoice_id)
        elif isinstance(event, PaymentReceived):
            assert {a.invoice_id for a in event.allocations} <= issued


def test_chronically_late_customers_pay_weeks_after_punctual_ones() -> None:
    simulation = Simulation(seed=3, customers=300, start=date(2025, 1, 1))
    archetype = {c.customer_id: c.archetype for c in simulation.customers}
    due: dict[str, date] = {}
    lateness: dict[Archetype, list[int]] = {a: [] for a in Archetype}
    for event in simulation.events():
        if isinstance(event, InvoiceIssued):
            due[event.invoice_id] = event.due_date
        elif isinstance(event, PaymentReceived):
            invoice = event.allocations[0].invoice_id
            days = (event.received_at.date() - due[invoice]).days
            lateness[archetype[event.customer_id]].append(days)
    late = mean(lateness[Archetype.CHRONICALLY_LATE])
    assert late - mean(lateness[Archetype.PUNCTUAL]) > 20
