"""The short path: an ``InvoiceSettled`` handed to Kafka → its steps cancelled.

Ingest is left out: the benchmark plays the ledger and produces its facts straight
to the ledger topic, and dunning runs in this process with its real consumer loop.
This isolates dunning's share of the end-to-end figure in ``through_ingest``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer

from arbor_dunning.adapters.tables import steps
from arbor_dunning.bootstrap import MIGRATIONS, create_app
from arbor_dunning.config import DunningSettings
from arbor_shared import topics
from arbor_shared.db.migrations import upgrade_async
from arbor_shared.events import (
    EventData,
    InvoiceBalanceChanged,
    InvoiceSettled,
)
from arbor_shared.events.envelope import Envelope
from arbor_shared.settings import KafkaSettings
from bench.billing import customer
from bench.common import Infra, drop_schemas, summary
from bench.dunning.watch import watch_cancellations

DUE = date(2030, 6, 17)


def _record(data: EventData) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    envelope = Envelope.for_data(data, source="bench", time=datetime.now(UTC))
    return (
        data.customer_id.encode(),
        data.model_dump_json().encode(),
        envelope.to_headers(),
    )


def _amounts(n: int, paid: int) -> dict[str, Any]:
    return {
        "customer_id": f"cus-{n}",
        "invoice_id": f"inv-{n}",
        "currency": "EUR",
        "issue_date": date(2030, 5, 18),
        "due_date": DUE,
        "amount_minor": 10_000 + n,
        "paid_minor": paid,
        "credited_minor": 0,
        "written_off_minor": 0,
    }


def _open(n: int) -> InvoiceBalanceChanged:
    return InvoiceBalanceChanged(
        **_amounts(n, 0),
        balance_minor=10_000 + n,
        status="open",
        cause_event_id=f"iss-{n}",
        cause_event_type="InvoiceIssued",
        changed_at=datetime(2030, 5, 18, tzinfo=UTC),
    )


def _settled(n: int) -> InvoiceSettled:
    return InvoiceSettled(
        **_amounts(n, 10_000 + n),
        settled_by="payment",
        settled_at=datetime(2030, 6, 1, tzinfo=UTC),
        settled_date=date(2030, 6, 1),
    )


def _settings(infra: Infra, prefix: str, folder: Path, polls: int) -> DunningSettings:
    jwks = folder / "jwks.json"
    jwks.write_text('{"keys": []}')
    return DunningSettings(
        database_url=infra.database_url,
        database_schema=f"{prefix}_dunning",
        kafka=KafkaSettings(
            bootstrap=infra.bootstrap,
            topic_prefix=prefix,
            topic_partitions=3,
            max_poll_records=polls,
        ),
        clock="event",  # nothing falls due: only cancellations are measured
        oidc_issuer="https://issuer.bench",
        oidc_audience="arbor",
        oidc_jwks_url=f"file://{jwks}",
        http_port=8003,
        smtp_host="127.0.0.1",
        smtp_port=9,
        mail_from="billing@arbor.example",
        webhook_url="http://127.0.0.1:9/hook",
        webhook_secret="bench-secret-of-enough-length",
    )


async def run(
    infra: Infra, invoices: int, rate: float, max_poll_records: int, folder: Path
) -> dict[str, object]:
    """Plan ``invoices``, then settle them at ``rate`` per second and time it."""
    prefix = f"b{uuid.uuid4().hex[:8]}"
    settings = _settings(infra, prefix, folder, max_poll_records)
    await upgrade_async(MIGRATIONS, infra.database_url, settings.database_schema)
    app = create_app(settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=infra.bootstrap, acks="all", enable_idempotence=True
    )
    try:
        async with app.router.lifespan_context(app):
            await producer.start()
            await _plan(app, producer, prefix, invoices)
            return await _measure(app, settings, producer, invoices, rate)
    finally:
        await producer.stop()
        await drop_schemas(infra.database_url, settings.database_schema)


async def _count(app: Any, query: sa.Select[Any]) -> int:
    async with app.state.runtime.sessions() as session:
        return int(await session.scalar(query) or 0)


async def _plan(
    app: Any, producer: AIOKafkaProducer, prefix: str, invoices: int
) -> None:
    for n in range(invoices):
        for data in (customer(n), _open(n)):
            key, value, headers = _record(data)
            await producer.send(f"{prefix}.{data.topic}", value, key, headers=headers)
    await producer.flush()
    planned = sa.select(sa.func.count()).where(steps.c.state == "planned")
    deadline = time.monotonic() + 300
    while await _count(app, planned) < invoices * 5:
        if time.monotonic() > deadline:
            raise TimeoutError("invoices were not planned in time")
        await asyncio.sleep(0.2)


async def _measure(
    app: Any,
    settings: DunningSettings,
    producer: AIOKafkaProducer,
    invoices: int,
    rate: float,
) -> dict[str, object]:
    sent_at: dict[str, float] = {}
    watch = await watch_cancellations(
        settings.database_url.get_secret_value(), settings.database_schema, invoices
    )
    topic = f"{settings.kafka.topic_prefix}.{topics.LEDGER}"
    started = time.perf_counter()
    for n in range(invoices):
        key, value, headers = _record(_settled(n))
        sent_at[f"inv-{n}"] = time.perf_counter()
        await producer.send(topic, value, key, headers=headers)
        await asyncio.sleep(max(0.0, started + (n + 1) / rate - time.perf_counter()))
    complete = await watch.wait(120)
    await watch.close()
    seen = watch.seen_at
    latencies = [(seen[i] - sent_at[i]) * 1000 for i in sent_at if i in seen]
    return {
        "mode": "ledger",
        "invoices": invoices,
        "rate_per_second": rate,
        "max_poll_records": settings.kafka.max_poll_records,
        "settlements_sent": invoices,
        "cancellations_observed": len(latencies),
        "complete": complete,
        "latency": summary(latencies),
        "handler_mean_ms": _histogram(
            app, "handler_duration_seconds", "InvoiceSettled"
        ),
        "batch_mean_ms": _histogram(app, "batch_duration_seconds", None),
    }


def _histogram(app: Any, name: str, event_type: str | None) -> float:
    registry = app.state.runtime.metrics.registry
    samples = [
        s
        for metric in registry.collect()
        for s in metric.samples
        if name in s.name
        and (event_type is None or s.labels.get("event_type") == event_type)
    ]
    total = sum(s.value for s in samples if s.name.endswith("_sum"))
    count = sum(s.value for s in samples if s.name.endswith("_count"))
    return round(1000 * total / count, 2) if count else float("nan")
