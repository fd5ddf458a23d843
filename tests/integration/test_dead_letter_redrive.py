"""A dead letter redriven after a fix is applied once, by its own consumer only."""

from __future__ import annotations

import sqlalchemy as sa

from arbor_shared import topics
from arbor_shared.events import InvoiceIssued
from arbor_shared.kafka.consumer import Context
from arbor_shared.kafka.dead_letters import read_dead_letters, redrive
from arbor_shared.runtime import ServiceRuntime
from tests.conftest import Namespace
from tests.e2e.counter_app import (
    CounterSettings,
    applications,
    count_application,
    create_tables,
    messaging,
)
from tests.samples import issued
from tests.support import encode, eventually, produce, service_settings

broken = {"inv-2"}


async def fragile_count(ctx: Context, event: InvoiceIssued) -> None:
    if event.invoice_id in broken:
        raise KeyError(f"no tariff for {event.invoice_id}")  # a bug, fixed later
    await count_application(ctx, event)


async def _counts(runtime: ServiceRuntime) -> dict[str, int]:
    async with runtime.sessions() as session:
        rows = (await session.execute(sa.select(applications))).all()
    return {row.invoice_id: row.times for row in rows}


async def test_redriven_dead_letter_is_applied_once_by_the_consumer_that_failed(
    namespace: Namespace,
) -> None:
    fragile = ServiceRuntime.create(
        "fragile", service_settings(CounterSettings, namespace, "fragile"), messaging
    )
    sturdy = ServiceRuntime.create(
        "sturdy", service_settings(CounterSettings, namespace, "sturdy"), messaging
    )
    fragile.add_consumer("count", [topics.INVOICES], {"InvoiceIssued": fragile_count})
    sturdy.add_consumer(
        "count", [topics.INVOICES], {"InvoiceIssued": count_application}
    )
    for runtime in (fragile, sturdy):
        await create_tables(runtime)
        await runtime.start()
    invoices = f"{namespace.name}.{topics.INVOICES}"
    try:
        await produce(
            namespace.kafka.bootstrap,
            invoices,
            [encode(issued(i)) for i in ("inv-1", "inv-2", "inv-3")],
        )
        await eventually(lambda: _has(fragile, {"inv-1": 1, "inv-3": 1}))
        letters = await eventually(
            lambda: read_dead_letters(namespace.kafka_settings(), invoices + ".dlq")
        )
        assert [(d.reason, d.consumer) for d in letters] == [
            ("handler_error", "fragile.count")
        ]
        assert "no tariff for inv-2" in letters[0].error

        broken.clear()
        await redrive(namespace.kafka_settings(), letters)
        await eventually(lambda: _has(fragile, {"inv-1": 1, "inv-2": 1, "inv-3": 1}))
        await eventually(lambda: _has(sturdy, {"inv-1": 1, "inv-2": 1, "inv-3": 1}))
        skipped = await eventually(lambda: _not_addressed(sturdy))
    finally:
        for runtime in (fragile, sturdy):
            await runtime.stop()
    assert skipped == 1


async def _has(runtime: ServiceRuntime, expected: dict[str, int]) -> bool:
    return await _counts(runtime) == expected


async def _not_addressed(runtime: ServiceRuntime) -> float:
    return sum(
        sample.value
        for family in runtime.metrics.consumed.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
        and sample.labels["outcome"] == "not_addressed"
    )
