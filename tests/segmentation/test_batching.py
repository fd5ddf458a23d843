"""Events applied a batch at a time decide exactly as one at a time, once each."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_segmentation.adapters import deferred, repository
from arbor_segmentation.adapters.definitions import DefinitionCache
from arbor_segmentation.adapters.moves import MoveCounter
from arbor_segmentation.adapters.tables import membership_history
from arbor_segmentation.domain import engine
from arbor_segmentation.domain.features import CustomerState, features
from arbor_segmentation.domain.prediction import LatePaymentModel
from arbor_segmentation.domain.updates import Outcome
from arbor_segmentation.handlers import Segmenter
from arbor_shared import topics
from arbor_shared.clock import FixedClock
from arbor_shared.events import EventData, InvoiceIssued, InvoiceSettled
from arbor_shared.events.envelope import Envelope
from arbor_shared.kafka.consumer import Context
from arbor_shared.runtime import ServiceRuntime
from arbor_shared.topics import dead_letter_topic
from tests.segmentation.conftest import Start, customer, invoice
from tests.support import published, read_topic

NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)
# The service's own timer loop, on the wall clock, would fire the timers these
# tests' events set on the fixed clock between the transactions compared.
QUIET_TIMERS = {"timer_poll_seconds": 3600.0}


def _settled(customer_id: str, invoice_id: str, on: date) -> InvoiceSettled:
    return InvoiceSettled(
        customer_id=customer_id,
        invoice_id=invoice_id,
        currency="EUR",
        issue_date=date(2025, 1, 1),
        due_date=date(2025, 1, 31),
        amount_minor=10_000,
        paid_minor=10_000,
        credited_minor=0,
        written_off_minor=0,
        settled_by="payment",
        settled_at=datetime.combine(on, datetime.min.time(), UTC),
        settled_date=on,
    )


def _story(customer_id: str) -> list[EventData]:
    """A customer who moves several times: direct debit, at risk, and back."""
    return [
        customer(customer_id, payment_method="direct_debit"),
        invoice(customer_id, f"{customer_id}-1", date(2025, 1, 1), date(2025, 1, 31)),
        _settled(customer_id, f"{customer_id}-1", date(2025, 2, 10)),
        invoice(customer_id, f"{customer_id}-2", date(2025, 2, 1), date(2025, 3, 3)),
        customer(customer_id, payment_method="card", name="Acme Renamed"),
    ]


def _segmenter() -> Segmenter:
    return Segmenter(
        LatePaymentModel(), DefinitionCache(), MoveCounter.create(CollectorRegistry())
    )


def _envelopes(events: Sequence[EventData]) -> list[tuple[Envelope, EventData]]:
    return [(Envelope.for_data(e, source="tests", time=NOW), e) for e in events]


async def _fail() -> None:
    raise OSError("connection reset by peer")


async def _apply(
    runtime: ServiceRuntime,
    segmenter: Segmenter,
    batch: Sequence[tuple[Envelope, EventData]],
    *,
    fail: bool = False,
    learn: bool = True,
) -> None:
    """One consumed batch, as the shared loop applies it: one transaction."""
    clock = FixedClock(NOW)
    async with runtime.sessions() as session, session.begin():
        for envelope, event in batch:
            ctx = Context(session, runtime.outbox, clock, envelope)
            await segmenter.on_event(ctx, event)
        if fail:
            # Queued after the segmenter's work, so it fails once that is written.
            deferred.before_commit(session, _fail)
    if learn:
        await segmenter.after_commit()


async def _published(runtime: ServiceRuntime, customer_id: str) -> list[Any]:
    """The customer's moves and risks as published, each topic's in order."""
    records = await published(runtime, topics.COHORTS, topics.RISK)
    return [
        _anonymous(customer_id, (r.topic, orjson.loads(r.value)))
        for r in records
        if r.key == customer_id.encode()
    ]


async def _history(runtime: ServiceRuntime, customer_id: str) -> list[Any]:
    history = membership_history
    async with runtime.sessions() as session:
        rows = await session.execute(
            sa.select(history)
            .where(history.c.customer_id == customer_id)
            .order_by(history.c.version)
        )
    return [_anonymous(customer_id, tuple(row)) for row in rows]


async def _state(runtime: ServiceRuntime, customer_id: str) -> CustomerState | None:
    async with runtime.sessions() as session:
        return await repository.peek_state(session, customer_id)


def _anonymous(customer_id: str, value: Any) -> Any:
    """``value`` with the customer's id taken out, to compare two customers."""
    return orjson.loads(orjson.dumps(value).decode().replace(customer_id, "cus"))


async def test_a_batch_decides_as_the_same_events_one_transaction_at_a_time(
    start_segmentation: Start,
) -> None:
    async with start_segmentation(**QUIET_TIMERS) as service:
        runtime: ServiceRuntime = service.app.state.runtime
        await _apply(runtime, _segmenter(), _envelopes(_story("batched")))
        # Learning only after the whole batch, as the batch does: the model's scores
        # are then the same in both.
        for pair in _envelopes(_story("single")):
            await _apply(runtime, _segmenter(), [pair], learn=False)
        published = [await _published(runtime, c) for c in ("batched", "single")]
        history = [await _history(runtime, c) for c in ("batched", "single")]
        state = await _state(runtime, "batched")

    assert published[0] == published[1]
    assert history[0] == history[1]
    moves = [value for topic, value in published[0] if topic.endswith(topics.COHORTS)]
    assert [m["version"] for m in moves] == list(range(1, len(moves) + 1))
    assert [m["to_cohort"] for m in moves][:2] == ["direct-debit", "at-risk"]
    assert [h[1] for h in history[0]] == [m["version"] for m in moves]
    assert all(h[-1] is not None for h in history[0][:-1])
    assert history[0][-1][-1] is None
    assert state is not None
    assert features(state, NOW)["invoices_settled"] == 1
    assert features(state, NOW)["payment_method"] == "card"


async def test_batch_retried_after_a_transient_failure_applies_each_event_once(
    start_segmentation: Start,
) -> None:
    segmenter = _segmenter()
    batch = _envelopes(_story("retried"))
    async with start_segmentation(**QUIET_TIMERS) as service:
        runtime: ServiceRuntime = service.app.state.runtime
        with pytest.raises(OSError, match="connection reset"):
            await _apply(runtime, segmenter, batch, fail=True)
        after_failure = (
            await _published(runtime, "retried"),
            await _state(runtime, "retried"),
        )
        await _apply(runtime, segmenter, batch)
        await _apply(runtime, _segmenter(), _envelopes(_story("once")))
        published = [await _published(runtime, c) for c in ("retried", "once")]
        state = await _state(runtime, "retried")

    assert after_failure == ([], None)
    assert published[0] == published[1]
    assert state is not None
    assert (state.settled_count, len(state.open)) == (1, 1)
    assert segmenter.model.examples == 1
    moves = next(iter(segmenter.moves.counter.collect())).samples
    assert sum(s.value for s in moves if s.name.endswith("_total")) == len(
        [t for t, _ in published[0] if t.endswith(topics.COHORTS)]
    )


async def test_event_failing_inside_its_batch_is_dead_lettered_the_rest_applied(
    start_segmentation: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    update = engine.UPDATES[InvoiceIssued]

    def refuse_bad(state: CustomerState, event: Any, at: datetime) -> Outcome:
        if event.invoice_id == "inv-bad":
            raise ValueError("cannot open inv-bad")
        return update(state, event, at)

    issued: type[EventData] = InvoiceIssued
    monkeypatch.setitem(engine.UPDATES, issued, refuse_bad)
    async with start_segmentation() as service:
        pass
    await service.send(
        customer("cus-1"),
        invoice("cus-1", "inv-good", date(2025, 1, 1), date(2025, 1, 31)),
        invoice("cus-1", "inv-bad", date(2025, 1, 2), date(2025, 2, 1)),
    )
    async with start_segmentation() as service:
        letters = await read_topic(
            service.namespace.kafka.bootstrap,
            service.topic(dead_letter_topic(topics.INVOICES)),
            1,
        )
        risks = await service.read(topics.RISK, 1)
        response = await service.http.get(
            "/v1/customers/cus-1/features", headers=service.operator
        )

    headers = dict(letters[0].headers)
    assert orjson.loads(letters[0].value)["invoice_id"] == "inv-bad"
    assert headers["dlq_reason"] == b"handler_error"
    assert b"cannot open inv-bad" in headers["dlq_error"]
    assert [r["invoice_id"] for r in risks] == ["inv-good"]
    assert response.json()["features"]["open_invoices"] == 1


class CrashError(Exception):
    pass


async def test_work_queued_on_a_rolled_back_transaction_never_runs(
    start_segmentation: Start,
) -> None:
    ran: list[str] = []

    async def before() -> None:
        ran.append("before")

    async def crash(session: AsyncSession) -> None:
        async with session.begin():
            deferred.before_commit(session, before)
            deferred.after_commit(session, lambda: ran.append("after"))
            raise CrashError

    async with start_segmentation(**QUIET_TIMERS) as service:
        runtime: ServiceRuntime = service.app.state.runtime
        async with runtime.sessions() as session:
            with pytest.raises(CrashError):
                await crash(session)
            async with session.begin():
                deferred.after_commit(session, lambda: ran.append("next"))

    assert ran == ["next"]
