"""The shared consumer loop against the real broker and database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from aiokafka import ConsumerRecord

from arbor_metrics.adapters.tables import invoice_facts
from arbor_metrics.bootstrap import MIGRATIONS, create_app
from arbor_metrics.config import MetricsSettings
from arbor_shared import topics
from arbor_shared.events import InvoiceIssued
from arbor_shared.kafka.consumer import ConsumerLoop, Context
from arbor_shared.runtime import ServiceRuntime
from tests.conftest import Namespace
from tests.e2e.counter_app import (
    CounterSettings,
    applications,
    count_application,
    create_tables,
    messaging,
)
from tests.samples import issued, open_balance
from tests.support import (
    encode,
    eventually,
    migrate,
    produce,
    read_topic,
    running,
    service_settings,
)


async def test_malformed_records_are_dead_lettered_and_later_ones_applied(
    namespace: Namespace,
) -> None:
    settings = service_settings(MetricsSettings, namespace, "metrics")
    await migrate(MIGRATIONS, settings)
    ledger = namespace.kafka_settings().topic_prefix + "." + topics.LEDGER
    key, good_value, good_headers = encode(open_balance("inv-2"))
    bad_json = (b"cus-1", b"{not json", encode(open_balance("inv-x"))[2])
    unknown_currency = (
        b"cus-1",
        good_value.replace(b'"EUR"', b'"XYZ"'),
        encode(open_balance("inv-y"))[2],
    )
    no_envelope: tuple[bytes, bytes, list[tuple[str, bytes]]] = (
        b"cus-1",
        good_value,
        [],
    )

    app = create_app(settings)
    async with running(app):
        await produce(
            namespace.kafka.bootstrap,
            ledger,
            [
                encode(open_balance("inv-1")),
                bad_json,
                unknown_currency,
                no_envelope,
                (key, good_value, good_headers),
            ],
        )
        sessions = app.state.runtime.sessions

        async def both_applied() -> list[str] | None:
            async with sessions() as session:
                ids = (
                    await session.scalars(sa.select(invoice_facts.c.invoice_id))
                ).all()
            return sorted(ids) if len(ids) == 2 else None

        assert await eventually(both_applied) == ["inv-1", "inv-2"]
        dead = await read_topic(namespace.kafka.bootstrap, ledger + ".dlq", 3)

    reasons = [dict(r.headers)["dlq_reason"].decode() for r in dead]
    assert reasons == ["invalid_data", "invalid_data", "bad_envelope"]
    assert dict(dead[1].headers)["dlq_error"].find(b"XYZ") >= 0
    assert {dict(r.headers)["dlq_source_offset"] for r in dead} == {b"1", b"2", b"3"}


async def test_redelivered_event_is_applied_once(namespace: Namespace) -> None:
    settings = service_settings(MetricsSettings, namespace, "metrics")
    await migrate(MIGRATIONS, settings)
    ledger = namespace.kafka_settings().topic_prefix + "." + topics.LEDGER
    record = encode(open_balance("inv-1"), event_id="same-event")

    app = create_app(settings)
    async with running(app):
        await produce(namespace.kafka.bootstrap, ledger, [record, record, record])
        runtime = app.state.runtime

        async def consumed_three() -> bool:
            samples = runtime.metrics.consumed.collect()[0].samples
            total = sum(s.value for s in samples if s.name.endswith("_total"))
            return bool(total >= 3)

        await eventually(consumed_three)
        outcomes = {
            s.labels["outcome"]: s.value
            for s in runtime.metrics.consumed.collect()[0].samples
            if s.name.endswith("_total")
        }
    assert outcomes == {"applied": 1.0, "duplicate": 2.0}


class _Batches:
    """Records for the loop's batch step, numbered like one partition's offsets."""

    def __init__(self) -> None:
        self.offset = 0

    def __call__(self, *invoice_ids: str) -> list[ConsumerRecord[bytes, bytes]]:
        records = []
        for invoice_id in invoice_ids:
            key, value, headers = encode(issued(invoice_id), event_id=invoice_id)
            records.append(
                ConsumerRecord(
                    "invoices", 0, self.offset, 0, 0, key, value, None, 0, 0, headers
                )
            )
            self.offset += 1
        return records


@pytest.fixture
async def counter(namespace: Namespace) -> AsyncIterator[ServiceRuntime]:
    settings = service_settings(CounterSettings, namespace, "counter")
    runtime = ServiceRuntime.create("counter", settings, messaging)
    await create_tables(runtime)
    yield runtime
    await runtime.engine.dispose()


async def _times(runtime: ServiceRuntime) -> dict[str, int]:
    async with runtime.sessions() as session:
        rows = (await session.execute(sa.select(applications))).all()
    return {row.invoice_id: row.times for row in rows}


def _outcomes(loop: ConsumerLoop) -> dict[str, float]:
    return {
        s.labels["outcome"]: s.value
        for family in loop.metrics.consumed.collect()
        for s in family.samples
        if s.name.endswith("_total")
    }


async def test_repeats_within_and_across_batches_are_applied_once(
    counter: ServiceRuntime,
) -> None:
    handlers = {InvoiceIssued.event_type: count_application}
    loop = counter.add_consumer("count", [topics.INVOICES], handlers)
    batch = _Batches()

    # The batch step is what run() calls per poll; driving it directly fixes which
    # records share a batch, which the broker does not guarantee.
    await loop._apply_until_done(batch("inv-1", "inv-1", "inv-2", "inv-1"))
    await loop._apply_until_done(batch("inv-2", "inv-3", "inv-1"))
    await loop._apply_until_done(batch("inv-3", "inv-3"))

    assert await _times(counter) == {"inv-1": 1, "inv-2": 1, "inv-3": 1}
    assert _outcomes(loop) == {"applied": 3.0, "duplicate": 6.0}


async def test_transient_failure_retries_the_batch_and_counts_it_once(
    counter: ServiceRuntime,
) -> None:
    failures = [OSError("connection reset by peer")]

    async def flaky_count(ctx: Context, event: InvoiceIssued) -> None:
        await count_application(ctx, event)
        if event.invoice_id == "inv-2" and failures:
            raise failures.pop()

    handlers = {InvoiceIssued.event_type: flaky_count}
    loop = counter.add_consumer("count", [topics.INVOICES], handlers)
    batch = _Batches()

    await loop._apply_until_done(batch("inv-1", "inv-2", "inv-3"))

    assert await _times(counter) == {"inv-1": 1, "inv-2": 1, "inv-3": 1}
    assert _outcomes(loop) == {"applied": 3.0}
