"""Staged writes reach their tables as staged, one statement per table."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from arbor_segmentation.adapters.changes import Changes
from arbor_segmentation.adapters.tables import (
    customer_features,
    due_timers,
    membership_history,
    memberships,
)
from arbor_segmentation.domain import codec
from arbor_segmentation.domain.features import ClosedInvoice, CustomerState, OpenInvoice
from arbor_segmentation.domain.membership import Membership, Move
from arbor_shared.runtime import ServiceRuntime
from tests.segmentation.conftest import Start

QUIET_TIMERS = {"timer_poll_seconds": 3600.0}
# Microseconds and offsets other than UTC must survive the trip.
AT = datetime(2025, 3, 30, 1, 59, 59, 123456, tzinfo=ZoneInfo("Europe/Berlin"))
LATER = datetime(2025, 4, 2, 9, 0, 0, 654321, tzinfo=timezone(timedelta(hours=-5)))


def _state(customer_id: str) -> CustomerState:
    state = CustomerState(customer_id, profile={"time_zone": "Europe/Berlin"})
    state.open["inv-1"] = OpenInvoice(
        "EUR", 10_000, 2_500, date(2025, 3, 1), date(2025, 3, 31), AT, True, 0.125
    )
    state.closed["inv-0"] = ClosedInvoice(
        date(2025, 2, 28), date(2025, 2, 1), date(2025, 3, 3), "EUR", 9_000, True
    )
    state.days_late_histogram[3] = 1
    state.profile_times["time_zone"] = AT
    return state


def _move(cohort: str, version: int, since: datetime) -> Move:
    membership = Membership(cohort, 2, f"rule-{cohort}", version, since)
    features: dict[str, Any] = {"late_rate": 0.5, "currency": "EUR", "flag": True}
    return Move("standard" if version == 1 else "late", membership, features)


async def _rows(runtime: ServiceRuntime, table: sa.Table) -> list[Any]:
    async with runtime.sessions() as session:
        result = await session.execute(sa.select(table).order_by(*table.primary_key))
    return list(result.all())


async def test_staged_states_timers_and_moves_are_written_as_staged(
    start_segmentation: Start,
) -> None:
    state = _state("cus-1")
    first, second = _move("late", 1, AT), _move("punctual", 2, LATER)
    async with start_segmentation(**QUIET_TIMERS) as service:
        runtime: ServiceRuntime = service.app.state.runtime
        async with runtime.sessions() as session, session.begin():
            changes = Changes(runtime.outbox)
            changes.save_state(state, AT)
            changes.sync_timers("cus-1", {"inv-1": AT, "window cus-1": LATER})
            changes.add_move("cus-1", first)
            changes.add_move("cus-1", second)
            await changes.write(session)
        stored = await _rows(runtime, customer_features)
        timers = await _rows(runtime, due_timers)
        history = await _rows(runtime, membership_history)
        current = await _rows(runtime, memberships)

    assert [(r.customer_id, r.state, r.updated_at) for r in stored] == [
        ("cus-1", codec.dump(state), AT)
    ]
    assert codec.load(stored[0].state) == state
    assert [(r.invoice_id, r.customer_id, r.fire_at) for r in timers] == [
        ("inv-1", "cus-1", AT),
        ("window cus-1", "cus-1", LATER),
    ]
    assert [tuple(r) for r in history] == [
        ("cus-1", 1, "standard", "late", 2, "rule-late", first.features, AT, LATER),
        (
            "cus-1",
            2,
            "late",
            "punctual",
            2,
            "rule-punctual",
            second.features,
            LATER,
            None,
        ),
    ]
    assert [tuple(r) for r in current] == [
        ("cus-1", "punctual", 2, "rule-punctual", 2, LATER)
    ]
