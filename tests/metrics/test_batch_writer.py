"""The batch writer: queued rows stored as they were, once, and without deadlock."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from arbor_metrics.adapters.batch import queue
from arbor_metrics.adapters.tables import invoice_facts, invoice_snapshots
from tests.metrics.conftest import Store
from tests.support import eventually

Queued = list[tuple[sa.Table, dict[str, Any]]]


def _fact(invoice_id: str) -> dict[str, Any]:
    return {
        "invoice_id": invoice_id,
        "customer_id": "cus-1",
        "currency": "EUR",
        "amount_minor": 100,
        "issue_date": date(2024, 1, 1),
        "due_date": date(2024, 1, 31),
    }


def _snapshot(invoice_id: str, **values: Any) -> dict[str, Any]:
    return {
        "invoice_id": invoice_id,
        "kind": "balance",
        "at": datetime(2024, 1, 1, 9, tzinfo=UTC),
        "cause": "issue",
        "effective": date(2024, 1, 1),
        "balance_minor": 100,
        "status": "open",
        "amount_minor": 100,
        "paid_minor": 0,
        "credited_minor": 0,
        "written_off_minor": 0,
        "settled_date": None,
        "settled_by": None,
    } | values


async def _commit(store: Store, rows: Queued) -> None:
    async with store.sessions() as session, session.begin():
        for table, row in rows:
            queue(session, table, row)


async def _rows(store: Store, table: sa.Table) -> list[dict[str, Any]]:
    async with store.sessions() as session:
        found = await session.execute(sa.select(table))
    return [dict(row._mapping) for row in found]


async def test_rows_are_stored_with_their_types_and_text_intact(store: Store) -> None:
    await store.clear()
    odd = _snapshot(
        'inv-"1"\\ é ✓',
        at=datetime(
            2024, 3, 31, 23, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2))
        ),
        balance_minor=9_007_199_254_740_993,  # not exact as a JSON double
        amount_minor=None,
        settled_date=date(2024, 3, 31),
        settled_by="payment",
    )

    await _commit(store, [(invoice_snapshots, odd)])

    assert await _rows(store, invoice_snapshots) == [odd]


@pytest.mark.parametrize(
    "later",
    [(invoice_snapshots, _snapshot("inv-1")), (invoice_facts, _fact("inv-2"))],
    ids=["other table", "same table"],
)
async def test_batches_sharing_facts_wait_for_each_other_without_deadlock(
    store: Store, later: tuple[sa.Table, dict[str, Any]]
) -> None:
    await store.clear()
    held = (invoice_facts, _fact("inv-1"))
    # A writer taking its locks in queueing order would hold ``later`` while it
    # waits for ``held``, which the other transaction holds before wanting
    # ``later``: a deadlock. In key order it waits first and holds nothing.
    async with store.sessions() as other, other.begin():
        await other.execute(insert(held[0]).values(held[1]))
        holder = await other.scalar(sa.select(sa.func.pg_backend_pid()))
        batch = asyncio.create_task(_commit(store, [later, held]))
        await eventually(lambda: _blocked_by(store, holder))
        await other.execute(insert(later[0]).values(later[1]).on_conflict_do_nothing())
    await asyncio.wait_for(batch, timeout=30)

    assert len(await _rows(store, invoice_facts)) == 1 + (later[0] is invoice_facts)
    assert len(await _rows(store, invoice_snapshots)) == (later[0] is invoice_snapshots)


async def _blocked_by(store: Store, pid: int | None) -> bool:
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"
    )
    async with store.sessions() as session:
        return bool(await session.scalar(query, {"pid": pid}))
