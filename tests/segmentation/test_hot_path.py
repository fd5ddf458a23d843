"""The per-event shortcuts give what the plain computation gives."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from arbor_segmentation.adapters.changes import Changes
from arbor_segmentation.adapters.tables import messaging
from arbor_segmentation.domain.features import (
    ClosedInvoice,
    CustomerState,
    OpenInvoice,
    recent_days_late,
    timer_instants,
)
from arbor_segmentation.work import Work
from arbor_shared.clock import FixedClock
from arbor_shared.events import InvoiceRiskAssessed
from arbor_shared.kafka.outbox import Outbox
from arbor_shared.topics import TopicNames

DUE = date(2025, 3, 30)
NOW = datetime(2025, 4, 2, 9, tzinfo=UTC)
DAY = timedelta(days=1)
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _customer_in(zone: str) -> CustomerState:
    return CustomerState(f"cus-{zone}", profile={"time_zone": zone})


def test_overdue_instant_of_one_due_date_follows_each_customers_time_zone() -> None:
    # Remembered instants are shared between customers; a zone must never borrow
    # another zone's midnight (30 March 2025 is also Europe's change to summer time).
    for zone in ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "Europe/Berlin"):
        expected = datetime.combine(DUE + timedelta(days=1), time(), ZoneInfo(zone))
        assert _customer_in(zone).overdue_at(DUE) == expected.astimezone(UTC)


def test_local_date_of_one_instant_follows_each_customers_time_zone() -> None:
    # Remembered days are shared between customers, as the overdue instants are.
    late_evening = datetime(2025, 3, 30, 22, 30, tzinfo=UTC)
    for zone, day in (
        ("Europe/Berlin", date(2025, 3, 31)),
        ("America/New_York", date(2025, 3, 30)),
        ("Asia/Tokyo", date(2025, 3, 31)),
        ("UTC", date(2025, 3, 30)),
        ("Europe/Berlin", date(2025, 3, 31)),
    ):
        assert _customer_in(zone).local_date(late_evening) == day
    assert CustomerState("cus-1").local_date(late_evening) == date(2025, 3, 30)


def test_overdue_instant_without_a_known_zone_is_the_next_utc_midnight() -> None:
    unknown = _customer_in("Mars/Olympus_Mons")
    assert unknown.overdue_at(DUE) == datetime(2025, 3, 31, tzinfo=UTC)
    assert CustomerState("cus-1").overdue_at(DUE) == datetime(2025, 3, 31, tzinfo=UTC)


_settlements = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=400),
        st.integers(min_value=-30, max_value=90),
        st.booleans(),
    ),
    max_size=30,
)


@given(_settlements, st.integers(min_value=1, max_value=12))
@settings(max_examples=200, deadline=None)
def test_recent_days_late_are_those_of_the_latest_settlements_oldest_first(
    settlements: list[tuple[int, int, bool]], count: int
) -> None:
    state = CustomerState("cus-1")
    for n, (due_offset, paid_after_due, counted) in enumerate(settlements):
        due = date(2024, 1, 1) + timedelta(days=due_offset)
        settled = due + timedelta(days=paid_after_due)
        state.closed[f"inv-{n}"] = ClosedInvoice(
            due, due - timedelta(days=30), settled, "EUR", 100, counted
        )
    kept = [c for c in state.closed.values() if c.counted]
    in_order = sorted(kept, key=lambda c: (c.settled_date, c.due_date))
    expected = [c.days_late for c in in_order][-count:]
    assert recent_days_late(state, count) == expected


# Due dates on the edges of the 90- and 365-day windows, and anywhere.
_offsets = st.sampled_from((-366, -365, -364, -91, -90, -89, 0)) | st.integers(
    min_value=-500, max_value=500
)
_dues = st.lists(st.tuples(_offsets, st.booleans()), max_size=8)


@given(
    _dues,
    _dues,
    st.integers(min_value=-800, max_value=800),
    st.lists(st.integers(min_value=0, max_value=1000), max_size=6),
)
@settings(max_examples=300, deadline=None)
def test_timer_instants_are_the_earliest_window_exit_and_tenure_mark_ahead(
    closed: list[tuple[int, bool]],
    open_: list[tuple[int, bool]],
    started: int,
    marks: list[int],
) -> None:
    # Spelled out as the definition reads: every due date plus every window, every
    # mark after the start, the earliest of those later than today.
    today = date(2025, 6, 1)
    state = _customer_in("Europe/Berlin")
    state.started_on = today + timedelta(days=started)
    for n, (offset, counted) in enumerate(closed):
        due = today + timedelta(days=offset)
        state.closed[f"c-{n}"] = ClosedInvoice(due, due, due, "EUR", 1, counted)
    for n, (offset, _) in enumerate(open_):
        due = today + timedelta(days=offset)
        state.open[f"o-{n}"] = OpenInvoice("EUR", 1, 1, due, due, NOW)
    dues = [c.due_date for c in state.closed.values() if c.counted]
    dues += [i.due_date for i in state.open.values()]
    exits = [d + timedelta(days=w) for d in dues for w in (90, 365)]
    reached = [state.started_on + timedelta(days=m) for m in marks]
    expected = {i: state.overdue_at(o.due_date) for i, o in state.open.items()}
    if leaves := [day for day in exits if day > today]:
        expected["window cus-Europe/Berlin"] = state.overdue_at(min(leaves) - DAY)
    if ahead := [day for day in reached if day > today]:
        expected["tenure cus-Europe/Berlin"] = state.overdue_at(min(ahead) - DAY)

    assert timer_instants(state, today, marks) == expected


def _work() -> Work:
    outbox = Outbox(
        messaging.outbox,
        topics=TopicNames("t"),
        source="arbor/segmentation",
        clock=FixedClock(NOW),
    )
    return Work({}, {}, None, Changes(outbox))


def test_published_fact_carries_the_trace_of_the_event_that_caused_it() -> None:
    work = _work()
    risk = InvoiceRiskAssessed(
        customer_id="cus-1",
        invoice_id="inv-1",
        late_probability=0.25,
        expected_pay_date=DUE,
        model_version="m",
        assessed_at=NOW,
    )
    work.publish(risk, NOW, "evt-1", TRACE)
    work.publish(risk, NOW, None, None)
    (caused, _), (uncaused, _) = work.changes.events
    assert (caused.trace_parent, caused.causation_id) == (TRACE, "evt-1")
    assert (caused.source, caused.time, caused.subject) == (
        "arbor/segmentation",
        NOW,
        "cus-1",
    )
    assert (uncaused.trace_parent, uncaused.causation_id) == (None, None)
    assert caused.id != uncaused.id
