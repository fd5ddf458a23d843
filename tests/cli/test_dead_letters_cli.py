"""``arbor dead-letters``: what a consumer refused is listed, then redriven to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from arbor_shared import topics
from arbor_shared.events import InvoiceIssued
from arbor_shared.kafka.consumer import Context
from arbor_shared.kafka.dead_letters import DeadLetterRecord, read_dead_letters
from arbor_shared.runtime import ServiceRuntime
from tests.cli.harness import arbor, said
from tests.conftest import Namespace
from tests.e2e.counter_app import (
    CounterSettings,
    applications,
    count_application,
    create_tables,
    messaging,
)
from tests.samples import issued
from tests.support import create_topics, encode, eventually, produce, service_settings

# Invoices the consumer cannot apply until the "fix" empties this set.
untariffed: set[str] = set()


async def tariffed_count(ctx: Context, event: InvoiceIssued) -> None:
    if event.invoice_id in untariffed:
        raise KeyError(f"no tariff for {event.invoice_id}")
    await count_application(ctx, event)


@pytest.fixture
async def billing(namespace: Namespace) -> AsyncIterator[ServiceRuntime]:
    """A running consumer of the invoices topic that refuses untariffed invoices."""
    settings = service_settings(CounterSettings, namespace, "billing")
    runtime = ServiceRuntime.create("billing", settings, messaging)
    runtime.add_consumer("count", [topics.INVOICES], {"InvoiceIssued": tariffed_count})
    await create_tables(runtime)
    await runtime.start()
    yield runtime
    await runtime.stop()
    untariffed.clear()


async def _counts(runtime: ServiceRuntime) -> dict[str, int]:
    async with runtime.sessions() as session:
        rows = (await session.execute(sa.select(applications))).all()
    return {row.invoice_id: row.times for row in rows}


async def _letters(namespace: Namespace) -> list[DeadLetterRecord]:
    dlq = f"{namespace.name}.{topics.INVOICES}.dlq"
    return await read_dead_letters(namespace.kafka_settings(), dlq)


def _kafka(namespace: Namespace) -> list[str]:
    return ["--bootstrap", namespace.kafka.bootstrap, "--prefix", namespace.name]


async def test_listed_dead_letter_is_redriven_by_its_offset_and_applied_once(
    billing: ServiceRuntime, namespace: Namespace
) -> None:
    untariffed.add("inv-2")
    invoices = f"{namespace.name}.{topics.INVOICES}"
    await produce(
        namespace.kafka.bootstrap,
        invoices,
        [encode(issued(i)) for i in ("inv-1", "inv-2")],
    )
    [letter] = await eventually(lambda: _letters(namespace))
    coordinates = f"{letter.partition}:{letter.offset}"

    listed = await arbor("dead-letters", "list", topics.INVOICES, *_kafka(namespace))
    untariffed.clear()
    redriven = await arbor(
        "dead-letters",
        "redrive",
        topics.INVOICES,
        "--offset",
        coordinates,
        *_kafka(namespace),
    )
    applied = await eventually(lambda: _applied_both(billing))

    assert listed.exit_code == 0, said(listed)
    row = next(line for line in listed.stdout.splitlines() if invoices in line)
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    assert cells[:6] == [
        f"{invoices}.dlq",
        coordinates,
        "InvoiceIssued",
        "billing.count",
        "handler_error",
        "KeyError('no tariff for inv-2')",
    ]
    assert cells[6].startswith(f"{invoices}:")
    assert said(listed).endswith("1 dead letters")
    assert redriven.exit_code == 0, said(redriven)
    assert said(redriven) == (
        f"redriven 1 letters to {topics.INVOICES}, each for its own consumer"
    )
    assert applied == {"inv-1": 1, "inv-2": 1}


async def _applied_both(runtime: ServiceRuntime) -> dict[str, int] | None:
    counts = await _counts(runtime)
    return counts if len(counts) == 2 else None


async def test_redrive_of_an_offset_that_holds_no_letter_sends_nothing(
    namespace: Namespace,
) -> None:
    await create_topics(namespace)

    result = await arbor(
        "dead-letters",
        "redrive",
        topics.INVOICES,
        "--offset",
        "0:42",
        *_kafka(namespace),
    )

    assert result.exit_code == 1
    assert said(result) == "nothing matched; nothing was sent"


async def test_redrive_without_offsets_or_all_is_refused() -> None:
    result = await arbor("dead-letters", "redrive", topics.INVOICES)

    assert result.exit_code == 2
    assert "name letters with --offset P:O, or pass --all" in said(result)


async def test_listing_an_unknown_topic_is_refused_naming_it() -> None:
    result = await arbor("dead-letters", "list", "billing.invoice.v1")

    assert result.exit_code == 2
    assert "unknown topic billing.invoice.v1; known: billing.customers.v1" in said(
        result
    )
