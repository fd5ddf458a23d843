"""Benchmark: a ledger settlement produced → its pending steps cancelled, committed.

    uv run python bench/dunning/run.py --invoices 300 --rate 50

Needs a PostgreSQL server (``ARBOR_TEST_DATABASE_URL``, as for the tests) and uses
the broker at ``ARBOR_TEST_KAFKA_BOOTSTRAP``, or starts a private one when that is
unset. The dunning service runs in this
process with its real consumer loop; every run uses its own topic prefix and schema
and drops the schema at the end. Latency is measured from just before each
``InvoiceSettled`` is handed to the producer to the moment a poll of the database
sees the invoice's steps cancelled: a trigger the benchmark adds to its own schema
sends a NOTIFY, which PostgreSQL delivers only when the cancelling transaction
commits. It includes the broker round trip, the consumer batch and the commit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer

from arbor_dunning.adapters.tables import steps
from arbor_dunning.bootstrap import MIGRATIONS, create_app
from arbor_dunning.config import DunningSettings
from arbor_shared import topics
from arbor_shared.db.migrations import upgrade_async
from arbor_shared.events import (
    CustomerCreated,
    EventData,
    InvoiceBalanceChanged,
    InvoiceSettled,
)
from arbor_shared.events.envelope import Envelope
from arbor_shared.settings import KafkaSettings

DUE = date(2030, 6, 17)


def _record(data: EventData) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    envelope = Envelope.for_data(data, source="bench", time=datetime.now(UTC))
    return (
        data.customer_id.encode(),
        data.model_dump_json().encode(),
        envelope.to_headers(),
    )


def _customer(n: int) -> CustomerCreated:
    return CustomerCreated(
        customer_id=f"cus-{n}",
        name=f"Customer {n}",
        email=f"cus-{n}@example.com",
        country="DE",
        time_zone="Europe/Berlin",
        currency="EUR",
        started_on=date(2025, 1, 1),
    )


def _open(n: int) -> InvoiceBalanceChanged:
    return InvoiceBalanceChanged(
        customer_id=f"cus-{n}",
        invoice_id=f"inv-{n}",
        currency="EUR",
        issue_date=date(2030, 5, 18),
        due_date=DUE,
        amount_minor=10_000 + n,
        paid_minor=0,
        credited_minor=0,
        written_off_minor=0,
        balance_minor=10_000 + n,
        status="open",
        cause_event_id=f"iss-{n}",
        cause_event_type="InvoiceIssued",
        changed_at=datetime(2030, 5, 18, tzinfo=UTC),
    )


def _settled(n: int) -> InvoiceSettled:
    return InvoiceSettled(
        customer_id=f"cus-{n}",
        invoice_id=f"inv-{n}",
        currency="EUR",
        issue_date=date(2030, 5, 18),
        due_date=DUE,
        amount_minor=10_000 + n,
        paid_minor=10_000 + n,
        credited_minor=0,
        written_off_minor=0,
        settled_by="payment",
        settled_at=datetime(2030, 6, 1, tzinfo=UTC),
        settled_date=date(2030, 6, 1),
    )


def _settings(prefix: str, issuer_dir: Path, max_poll_records: int) -> DunningSettings:
    jwks = issuer_dir / "jwks.json"
    jwks.write_text('{"keys": []}')
    return DunningSettings(
        database_url=os.environ["ARBOR_TEST_DATABASE_URL"],
        database_schema=f"{prefix}_dunning",
        kafka=KafkaSettings(
            bootstrap=os.environ["ARBOR_TEST_KAFKA_BOOTSTRAP"],
            topic_prefix=prefix,
            topic_partitions=3,
            max_poll_records=max_poll_records,
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


async def _count(app: object, query: sa.Select[Any]) -> int:
    async with app.state.runtime.sessions() as session:  # type: ignore[attr-defined]
        return int(await session.scalar(query) or 0)


async def run(
    invoices: int, rate: float, max_poll_records: int, folder: Path
) -> dict[str, object]:
    prefix = f"b{uuid.uuid4().hex[:8]}"
    settings = _settings(prefix, folder, max_poll_records)
    await upgrade_async(
        MIGRATIONS, settings.database_url.get_secret_value(), settings.database_schema
    )
    app = create_app(settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap, acks="all", enable_idempotence=True
    )
    try:
        async with app.router.lifespan_context(app):
            await producer.start()
            await _plan(app, producer, prefix, invoices)
            return await _measure(app, settings, producer, invoices, rate)
    finally:
        await producer.stop()
        await _drop(settings)


async def _plan(
    app: object, producer: AIOKafkaProducer, prefix: str, invoices: int
) -> None:
    for n in range(invoices):
        for data in (_customer(n), _open(n)):
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
    prefix = settings.kafka.topic_prefix
    sent_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    listener, everyone = await _watch(settings, seen_at, invoices)
    started = time.perf_counter()
    for n in range(invoices):
        key, value, headers = _record(_settled(n))
        sent_at[f"inv-{n}"] = time.perf_counter()
        await producer.send(f"{prefix}.{topics.LEDGER}", value, key, headers=headers)
        await asyncio.sleep(max(0.0, started + (n + 1) / rate - time.perf_counter()))
    await asyncio.wait_for(everyone, 120)
    await listener.close()
    handler = _histogram(app, "handler_duration_seconds", "InvoiceSettled")
    batch = _histogram(app, "batch_duration_seconds", None)
    latencies = sorted((seen_at[i] - sent_at[i]) * 1000 for i in sent_at)
    return {
        "invoices": invoices,
        "rate_per_second": rate,
        "max_poll_records": settings.kafka.max_poll_records,
        "p50_ms": round(statistics.median(latencies), 1),
        "p90_ms": round(latencies[int(0.9 * (len(latencies) - 1))], 1),
        "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))], 1),
        "max_ms": round(latencies[-1], 1),
        "handler_mean_ms": handler,
        "batch_mean_ms": batch,
        "batches": _batches(app),
    }


def _samples(app: Any, name: str) -> list[Any]:
    registry = app.state.runtime.metrics.registry
    return [
        s for metric in registry.collect() for s in metric.samples if name in s.name
    ]


def _histogram(app: Any, name: str, event_type: str | None) -> float:
    samples = [
        s
        for s in _samples(app, name)
        if event_type is None or s.labels.get("event_type") == event_type
    ]
    total = sum(s.value for s in samples if s.name.endswith("_sum"))
    count = sum(s.value for s in samples if s.name.endswith("_count"))
    return round(1000 * total / count, 2) if count else float("nan")


def _batches(app: Any) -> int:
    return int(
        sum(
            s.value
            for s in _samples(app, "batch_duration_seconds")
            if s.name.endswith("_count")
        )
    )


_TRIGGER = """
CREATE FUNCTION "{schema}".bench_notify() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('{channel}', NEW.invoice_id);
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER bench_cancelled AFTER UPDATE ON "{schema}".steps FOR EACH ROW
  WHEN (NEW.state = 'cancelled' AND NEW.cancel_reason = 'settled')
  EXECUTE FUNCTION "{schema}".bench_notify();
"""


async def _watch(
    settings: DunningSettings, seen_at: dict[str, float], invoices: int
) -> tuple[asyncpg.Connection, asyncio.Future[None]]:
    """Record when each invoice's cancellation commits (NOTIFY arrives on commit)."""
    everyone = asyncio.get_running_loop().create_future()
    channel = settings.database_schema
    connection = await asyncpg.connect(_plain_url(settings))

    def arrived(*args: object) -> None:
        seen_at.setdefault(str(args[-1]), time.perf_counter())
        if len(seen_at) == invoices and not everyone.done():
            everyone.set_result(None)

    await connection.execute(
        _TRIGGER.format(schema=settings.database_schema, channel=channel)
    )
    await connection.add_listener(channel, arrived)
    return connection, everyone


async def _drop(settings: DunningSettings) -> None:
    connection = await asyncpg.connect(_plain_url(settings))
    try:
        await connection.execute(
            f'DROP SCHEMA IF EXISTS "{settings.database_schema}" CASCADE'
        )
    finally:
        await connection.close()


def _plain_url(settings: DunningSettings) -> str:
    return settings.database_url.get_secret_value().replace("+asyncpg", "")


@contextlib.contextmanager
def _broker() -> Iterator[None]:
    if os.environ.get("ARBOR_TEST_KAFKA_BOOTSTRAP"):
        yield
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.infra import start_kafka

    with tempfile.TemporaryDirectory(prefix="arbor-bench-kafka-") as state:
        handle = start_kafka(Path(state))
        os.environ["ARBOR_TEST_KAFKA_BOOTSTRAP"] = handle.bootstrap
        try:
            yield
        finally:
            handle.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=300)
    parser.add_argument("--rate", type=float, default=50.0, help="settlements per s")
    parser.add_argument("--max-poll-records", type=int, default=500)
    arguments = parser.parse_args()
    with _broker(), tempfile.TemporaryDirectory(prefix="arbor-bench-") as folder:
        results = asyncio.run(
            run(
                arguments.invoices,
                arguments.rate,
                arguments.max_poll_records,
                Path(folder),
            )
        )
    print(json.dumps(results, indent=2))
    (Path(__file__).parent / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
