"""The outbox relay against the real broker and database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from sqlalchemy.engine import Engine

from arbor_shared import topics
from arbor_shared.http import create_service_app
from arbor_shared.runtime import ServiceRuntime
from tests.conftest import Namespace
from tests.e2e.counter_app import CounterSettings, create_tables, messaging
from tests.samples import issued
from tests.support import read_topic, running, service_settings

# Three of these fill the producer's largest record batch (1 MiB), so the rows of
# one customer leave in several batches rather than one.
LARGE_VALUE = b"x" * 300_000


@pytest.fixture
async def counter(namespace: Namespace) -> AsyncIterator[ServiceRuntime]:
    settings = service_settings(CounterSettings, namespace, "counter")
    runtime = ServiceRuntime.create("counter", settings, messaging)
    await create_tables(runtime)
    yield runtime
    await runtime.engine.dispose()


async def _stage(runtime: ServiceRuntime, rows: list[tuple[str, str, bytes]]) -> None:
    """Stage (customer, event id, value) rows in one transaction, in this order."""
    staged = []
    for customer, event_id, value in rows:
        data = issued(event_id, customer_id=customer)
        staged.append((runtime.outbox.envelope(data, event_id=event_id), data, value))
    async with runtime.sessions() as session, session.begin():
        await runtime.outbox.publish_encoded(session, staged)


async def test_each_customers_records_keep_outbox_order_across_full_batches(
    namespace: Namespace, counter: ServiceRuntime
) -> None:
    large = [("cus-large", f"large-{n}", LARGE_VALUE + bytes([n])) for n in range(8)]
    small = [("cus-small", f"small-{n}", b"{}") for n in range(40)]
    # Interleaved, as the outbox of several customers is.
    rows = [row for pair in zip(large, small[:8], strict=True) for row in pair]
    rows += small[8:]
    topic = namespace.kafka_settings().topic_prefix + "." + topics.INVOICES

    app = create_service_app(counter, title="counter", description="test only")
    async with running(app):
        await _stage(counter, rows)
        records = await read_topic(namespace.kafka.bootstrap, topic, len(rows))

    published = [(r.key, dict(r.headers)["ce_id"].decode()) for r in records]
    for customer in ("cus-large", "cus-small"):
        mine = [event_id for key, event_id in published if key == customer.encode()]
        assert mine == [event_id for c, event_id, _ in rows if c == customer]
    assert len({r.partition for r in records if r.key == b"cus-large"}) == 1
    by_id = {dict(r.headers)["ce_id"].decode(): r.value for r in records}
    assert by_id["large-5"] == LARGE_VALUE + bytes([5])


async def test_the_relay_is_woken_by_a_commit_and_not_by_a_rollback(
    counter: ServiceRuntime,
) -> None:
    outbox = counter.outbox
    data = issued("inv-1")
    row = (outbox.envelope(data, event_id="ev-1"), data, b"{}")

    async with counter.sessions() as session:
        async with session.begin():
            await outbox.publish_encoded(session, [row])
            woken_before_commit = outbox.wakeup.is_set()
        woken_by_commit = outbox.wakeup.is_set()

        outbox.wakeup.clear()
        transaction = await session.begin()
        await outbox.publish_encoded(session, [row])
        await transaction.rollback()
        woken_by_rollback = outbox.wakeup.is_set()

    assert (woken_before_commit, woken_by_commit, woken_by_rollback) == (
        False,
        True,
        False,
    )


def test_a_service_app_traces_statements_but_not_every_pool_checkout(
    counter: ServiceRuntime,
) -> None:
    create_service_app(counter, title="counter", description="test only")

    assert SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry
    assert not hasattr(Engine.connect, "__wrapped__")
