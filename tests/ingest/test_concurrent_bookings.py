"""Business keys hold across concurrent transactions, not only one after another."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI

from arbor_ingest import handlers
from arbor_shared.events import PaymentReceived
from tests.support import eventually


async def _book(runtime: Any, customer_id: str) -> str:
    """Book a payment of the shared provider id for one customer, and commit."""
    payment = _shared_payment(customer_id)
    async with runtime.sessions() as session, session.begin():
        (result,) = await handlers.accept_many(
            session, runtime.outbox, [(f"ev-{customer_id}", payment)], publisher="t"
        )
    return result.status


async def _waiting_on_a_lock(runtime: Any) -> bool:
    async with runtime.sessions() as session:
        waiting = await session.scalar(
            sa.text(
                "SELECT count(*) FROM pg_locks "
                "WHERE locktype = 'advisory' AND NOT granted"
            )
        )
    return bool(waiting)


async def test_one_provider_payment_booked_for_two_customers_at_once_counts_once(
    app: FastAPI,
) -> None:
    runtime = app.state.runtime
    first_done = asyncio.Event()
    release = asyncio.Event()

    async def first_holding_its_transaction() -> str:
        async with runtime.sessions() as session, session.begin():
            (result,) = await handlers.accept_many(
                session,
                runtime.outbox,
                [("ev-cus-a", _shared_payment("cus-a"))],
                publisher="t",
            )
            first_done.set()
            await release.wait()
        return result.status

    first = asyncio.create_task(first_holding_its_transaction())
    await first_done.wait()
    second = asyncio.create_task(_book(runtime, "cus-b"))
    # The second either finishes while the first is open (the key not yet visible:
    # booked twice) or waits for the first to commit; only then let the first go.
    await eventually(lambda: _finished_or_waiting(runtime, second), timeout=30)
    release.set()

    assert await first == "accepted"
    assert await second == "rejected"


def _shared_payment(customer_id: str) -> PaymentReceived:
    return PaymentReceived(
        customer_id=customer_id,
        payment_id=f"pay-{customer_id}",
        provider_payment_id="ch_shared",
        currency="EUR",
        amount_minor=10_000,
        received_at=datetime(2024, 3, 20, 9, tzinfo=UTC),
    )


async def _finished_or_waiting(runtime: Any, task: asyncio.Task[str]) -> bool:
    return task.done() or await _waiting_on_a_lock(runtime)
