"""Streaming state equals a batch recomputation, whatever the arrival order.

The handlers and the batch writer run against the real PostgreSQL schema; the events
arrive shuffled, some twice under new event ids (a producer retry upstream), split into
random consumer batches. KPIs from what was stored must equal KPIs computed from the
history in order, for every day, cohort basis and variant asked.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbor_metrics.adapters.repository import load_facts
from arbor_metrics.adapters.tables import messaging
from arbor_metrics.domain.compute import CohortBasis, KpiQuery, compute
from arbor_metrics.domain.facts import Facts
from arbor_metrics.entrypoints.schemas import render
from arbor_metrics.handlers import HANDLERS
from arbor_shared.clock import FixedClock
from arbor_shared.events import EventData
from arbor_shared.events.envelope import Envelope
from arbor_shared.kafka.consumer import Context
from arbor_shared.kafka.outbox import Outbox
from arbor_shared.topics import TopicNames
from tests.metrics.batch import batch_facts
from tests.metrics.conftest import Store
from tests.metrics.scenarios import histories

CLOCK = FixedClock(datetime(2024, 6, 1, tzinfo=UTC))
OUTBOX = Outbox(messaging.outbox, topics=TopicNames(), source="tests", clock=CLOCK)
# Every third day over the histories' span, so a fact stored a day off shows up.
DAYS = [date(2024, 1, 1) + timedelta(days=n) for n in range(0, 240, 3)]
SLICES: tuple[tuple[str, CohortBasis, int | None, int, str | None], ...] = (
    ("all", "as_of", None, 0, None),
    ("late", "issued", 30, 3, None),
    ("punctual", "as_of", None, 0, "a"),
)
QUERIES = [
    KpiQuery(
        as_of=day,
        currency="EUR",
        cohort=cohort,
        cohort_basis=basis,
        window_days=window,
        grace_days=grace,
        variant=variant,
    )
    for day in DAYS
    for cohort, basis, window, grace, variant in SLICES
]


async def _stream(store: Store, arrivals: list[EventData], cuts: list[int]) -> None:
    bounds = zip([0, *cuts], [*cuts, len(arrivals)], strict=True)
    batches = [arrivals[a:b] for a, b in bounds]
    for batch in batches:
        async with store.sessions() as session, session.begin():
            for data in batch:
                envelope = Envelope.for_data(
                    data, source="tests", time=CLOCK.now(), event_id=str(uuid.uuid4())
                )
                handler = HANDLERS[data.event_type]
                await handler(Context(session, OUTBOX, CLOCK, envelope), data)


async def _streamed(store: Store) -> Facts:
    async with store.sessions() as session, session.begin():
        return await load_facts(session, currency="EUR")


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data(), history=histories())
async def test_streamed_kpis_equal_batch_recomputation_under_shuffle_and_duplicates(
    store: Store, data: st.DataObject, history: list[EventData]
) -> None:
    duplicates = data.draw(st.lists(st.sampled_from(history), max_size=len(history)))
    arrivals = data.draw(st.permutations([*history, *duplicates]))
    cuts = sorted(data.draw(st.sets(st.integers(1, max(len(arrivals) - 1, 1)))))
    await store.clear()

    await _stream(store, arrivals, cuts)

    streamed, batch = await _streamed(store), batch_facts(history)
    for query in QUERIES:
        assert render(compute(streamed, query)) == render(compute(batch, query)), query
