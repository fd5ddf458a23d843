"""kill -9 in the middle of a batch: after restart every event is applied once."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy.ext.asyncio import AsyncEngine

from arbor_shared import topics
from arbor_shared.db import create_engine
from arbor_shared.events import InvoiceIssued
from tests.conftest import Namespace
from tests.e2e.processes import ServiceProcess, free_port
from tests.support import create_topics, encode, eventually, produce

EVENTS = 3_000


def _invoice(number: int) -> InvoiceIssued:
    return InvoiceIssued(
        customer_id=f"cus-{number % 37}",
        invoice_id=f"inv-{number}",
        currency="EUR",
        amount_minor=1_000 + number,
        issue_date=date(2024, 1, 1),
        due_date=date(2024, 1, 31),
        issued_at=datetime(2024, 1, 1, tzinfo=UTC),
    )


async def test_consumer_killed_mid_batch_applies_every_event_exactly_once(
    namespace: Namespace, tmp_path: Path
) -> None:
    env = namespace.env("counter", "ARBOR_COUNTER_", free_port())
    counter = ServiceProcess(
        "tests.e2e.counter_app",
        env,
        int(env["ARBOR_COUNTER_HTTP_PORT"]),
        tmp_path / "counter.log",
    )
    engine = create_engine(namespace.postgres.url, namespace.schema("counter"))
    await create_topics(namespace)
    await produce(
        namespace.kafka.bootstrap,
        f"{namespace.name}.{topics.INVOICES}",
        [encode(_invoice(n)) for n in range(EVENTS)],
    )

    # First life: the failpoint exits hard after a batch commits, before its offsets.
    counter.start(extra_env={"ARBOR_FAILPOINTS": "consumer_after_commit"})
    assert await counter.wait_exit() == 137
    first_batch = await _applied(engine)
    assert 0 < first_batch < EVENTS
    # Its effects committed but its offsets did not: the batch must come again.
    assert await _committed_offsets(namespace) == 0

    # Second life: killed with SIGKILL once it is part-way through the rest.
    counter.start()
    await eventually(lambda: _applied_more_than(engine, first_batch))
    counter.kill()

    # Third life runs to the end.
    counter.start()
    try:
        await eventually(lambda: _applied_all(engine), timeout=120)
        async with engine.connect() as connection:
            times = (
                await connection.execute(
                    sa.text("SELECT times, count(*) FROM applications GROUP BY times")
                )
            ).all()
    finally:
        counter.stop()
        await engine.dispose()

    assert [tuple(row) for row in times] == [(1, EVENTS)]


async def _applied(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        count = await connection.scalar(sa.text("SELECT count(*) FROM applications"))
    return int(count or 0)


async def _applied_more_than(engine: AsyncEngine, floor: int) -> bool:
    return await _applied(engine) > floor


async def _applied_all(engine: AsyncEngine) -> bool:
    return await _applied(engine) == EVENTS


async def _committed_offsets(namespace: Namespace) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=namespace.kafka.bootstrap)
    await admin.start()
    try:
        group = f"{namespace.name}.arbor.counter.count"
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(max(meta.offset, 0) for meta in offsets.values())
