"""The ledger store against the real database: it loads what a batch can reach."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import FastAPI
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from arbor_ingest.adapters import ledger_store
from arbor_ingest.domain import identities
from arbor_ingest.domain.errors import EventRejectedError
from arbor_ingest.domain.ledger import CustomerLedger
from arbor_shared.events import EventData
from tests.ingest.test_ledger import issued
from tests.ingest.test_ledger_properties import refunding_histories, working_set

Example = tuple[list[EventData], list[EventData]]


def examples(count: int) -> list[Example]:
    """Stored histories, each with the batch that comes next."""
    found: list[Example] = []

    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate])
    @given(history=refunding_histories(), split=st.integers(0, 30))
    def collect(history: list[tuple[str, EventData]], split: int) -> None:
        events = [data for _, data in history]
        found.append((events[:split], events[split : split + 4]))

    collect()
    return found


def booked(customer: str, events: list[EventData]) -> CustomerLedger:
    ledger = CustomerLedger(customer)
    for n, data in enumerate(events):
        try:
            ledger.apply(data, event_id=f"ev-{n}")
        except EventRejectedError:
            continue
    return ledger


async def test_store_loads_exactly_the_rows_a_batch_can_reach(app: FastAPI) -> None:
    sessions = app.state.runtime.sessions
    for n, (stored, batch) in enumerate(examples(60)):
        customer = f"cus-{n}"
        ledger = booked(customer, stored)
        async with sessions() as session, session.begin():
            await session.execute(
                sa.text("TRUNCATE ledger_invoices, ledger_funds, ledger_customers")
            )
            await ledger_store.get_many(session, {customer})
            await ledger_store.save(session, [ledger])

        async with sessions() as session, session.begin():
            loaded = await ledger_store.get_many(
                session,
                {customer},
                invoices={i for e in batch for i, _ in identities.invoices_named(e)},
                funds={k for e in batch for k in identities.funds_named(e)},
            )

        invoices, funds = working_set(ledger.invoices, ledger.funds, batch)
        assert loaded[customer].invoices == {i: ledger.invoices[i] for i in invoices}
        assert loaded[customer].funds == {k: ledger.funds[k] for k in funds}


async def test_store_leaves_other_customers_rows_out(app: FastAPI) -> None:
    ours, theirs = booked("cus-a", []), booked("cus-b", [])
    async with app.state.runtime.sessions() as session, session.begin():
        await ledger_store.get_many(session, {"cus-a", "cus-b"})
        theirs.apply(issued("inv-b", 100), event_id="ev-1")
        await ledger_store.save(session, [ours, theirs])

    async with app.state.runtime.sessions() as session, session.begin():
        loaded = await ledger_store.get_many(session, {"cus-a"}, invoices={"inv-b"})

    assert loaded["cus-a"].invoices == {}
