"""Concurrent single events share transactions and are answered one by one."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_ingest import handlers
from arbor_ingest.entrypoints.parsing import parse_event
from arbor_shared import topics
from arbor_shared.events import EventData
from arbor_shared.kafka.outbox import Outbox
from tests.conftest import Namespace
from tests.ingest.conftest import SignedClient
from tests.ingest.test_api import (
    invoice,
    published_ids,
    refund_of_an_unknown_payment,
    topic,
)
from tests.support import header, published, read_topic


def groups(app: FastAPI) -> tuple[float, float]:
    """How many single-event transactions ran, and how many events they held."""
    registry = app.state.runtime.metrics.registry
    name = "arbor_ingest_single_event_group_size"
    count = registry.get_sample_value(f"{name}_count")
    total = registry.get_sample_value(f"{name}_sum")
    assert count is not None, "no group size histogram"
    assert total is not None
    return count, total


async def post_all(
    client: SignedClient, events: list[dict[str, Any]]
) -> list[httpx.Response]:
    return await asyncio.gather(*(client.post("/v1/events", e) for e in events))


async def test_concurrent_single_events_commit_in_fewer_transactions_once_each(
    client: SignedClient, namespace: Namespace, app: FastAPI
) -> None:
    events = [invoice(f"inv-{n}", f"cus-{n % 7}") for n in range(50)]
    expected = [e["id"] for e in events]

    answers = await post_all(client, events)

    assert [a.status_code for a in answers] == [202] * 50
    assert [a.json() for a in answers] == [
        {"id": i, "status": "accepted"} for i in expected
    ]
    count, total = groups(app)
    assert total == 50
    assert count < 50
    assert sorted(await published_ids(app, topics.INVOICES)) == sorted(expected)
    records = await read_topic(
        namespace.kafka.bootstrap, topic(namespace, topics.INVOICES), 50
    )
    assert sorted(dict(r.headers)["ce_id"].decode() for r in records) == sorted(
        expected
    )


async def test_rejected_event_in_a_concurrent_group_leaves_the_others_accepted(
    client: SignedClient, app: FastAPI
) -> None:
    good = [invoice(f"inv-{n}") for n in range(20)]

    *accepted, refused = await post_all(client, [*good, refund_of_an_unknown_payment()])

    assert refused.status_code == 422
    (problem,) = refused.json()["detail"]
    assert problem["field"] == "data.payment_id"
    assert [a.json()["status"] for a in accepted] == ["accepted"] * 20
    assert sorted(await published_ids(app, topics.INVOICES)) == sorted(
        e["id"] for e in good
    )
    assert await published_ids(app, topics.PAYMENTS) == []
    count, total = groups(app)
    assert total == 21
    assert count < 21


async def test_same_event_posted_twice_concurrently_is_accepted_then_duplicate(
    client: SignedClient, app: FastAPI
) -> None:
    others = [invoice(f"inv-{n}") for n in range(2, 12)]

    first, second, *rest = await post_all(client, [invoice(), invoice(), *others])

    assert first.status_code == second.status_code == 202
    assert sorted([first.json()["status"], second.json()["status"]]) == [
        "accepted",
        "duplicate",
    ]
    assert {a.json()["status"] for a in rest} == {"accepted"}
    assert (await published_ids(app, topics.INVOICES)).count("ev-inv-1") == 1
    count, total = groups(app)
    assert total == 12
    assert count < 12


async def test_same_event_id_with_other_data_in_one_burst_is_refused_as_if_later(
    client: SignedClient,
) -> None:
    changed = invoice(amount=99)

    first, second = await post_all(client, [invoice(), changed])

    assert first.json() == {"id": "ev-inv-1", "status": "accepted"}
    assert second.status_code == 422
    (problem,) = second.json()["detail"]
    assert problem["field"] == "id"
    assert problem["msg"] == "event id ev-inv-1 was accepted before with different data"


async def test_failed_group_transaction_answers_every_request_503_stores_nothing(
    client: SignedClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    accept_many = handlers.accept_many

    async def lose_connection_before_commit(
        session: AsyncSession,
        outbox: Outbox,
        items: list[tuple[str, EventData]],
        **kwargs: Any,
    ) -> list[handlers.Acceptance]:
        await accept_many(session, outbox, items, **kwargs)
        raise ConnectionResetError("database connection lost before commit")

    monkeypatch.setattr(handlers, "accept_many", lose_connection_before_commit)

    answers = await post_all(client, [invoice(f"inv-{n}") for n in range(10)])

    assert [a.status_code for a in answers] == [503] * 10
    assert await published_ids(app, topics.INVOICES) == []
    count, total = groups(app)
    assert total == 10
    assert count < 10


async def _accept_in_trace(app: FastAPI, n: int) -> None:
    """Submit invoice ``n`` as a request of trace ``n`` would."""
    span_context = SpanContext(
        trace_id=n,
        span_id=n,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    span = NonRecordingSpan(span_context)
    token = context.attach(trace.set_span_in_context(span))
    try:
        event_id, data = parse_event(invoice(f"inv-{n}"))
        await app.state.single_events.accept("t", event_id, data)
    finally:
        context.detach(token)


async def test_each_event_of_a_group_carries_its_own_requests_trace(
    app: FastAPI,
) -> None:
    await asyncio.gather(*(_accept_in_trace(app, n) for n in (1, 2, 3)))

    records = await published(app.state.runtime, topics.INVOICES)
    traces = {header(r, "ce_id"): header(r, "ce_traceparent") for r in records}
    assert traces == {f"ev-inv-{n}": f"00-{n:032x}-{n:016x}-01" for n in (1, 2, 3)}
    count, _total = groups(app)
    assert count < 3
