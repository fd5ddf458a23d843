"""What the fault-injection tests share: services as processes, signed posts, probes.

Every wait is bounded; the helpers read the broker and the database directly, so the
invariants are checked against what is stored, not against what a service reports.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine

from arbor_ingest.bootstrap import MIGRATIONS
from arbor_ingest.signing import sign
from arbor_shared import topics
from arbor_shared.db import create_engine
from arbor_shared.db.migrations import upgrade_async
from tests.conftest import Namespace
from tests.e2e.processes import ServiceProcess, free_port
from tests.faults import effects_app
from tests.support import eventually

KEY_ID = "faults-publisher"
SECRET = "f" * 16 + "0123456789abcdef"
PUBLISHERS = json.dumps(
    [{"key_id": KEY_ID, "secret": SECRET, "scopes": ["events:write"]}]
)
HTTP_TIMEOUT_SECONDS = 10.0
# Namespace.kafka_settings and Namespace.env create every topic with three.
TOPIC_PARTITIONS = 3


async def ingest_process(namespace: Namespace, log_dir: Path) -> ServiceProcess:
    """Ingest as a real process, migrated, knowing the one test publisher."""
    port = free_port()
    env = namespace.env("ingest", "ARBOR_INGEST_", port) | {
        "ARBOR_INGEST_PUBLISHERS": PUBLISHERS,
        # The faults are about the pipeline, not the per-publisher rate limit.
        "ARBOR_INGEST_RATE_PER_SECOND": "100000",
        "ARBOR_INGEST_RATE_BURST": "100000",
        "ARBOR_INGEST_LOG_FORMAT": "console",
        "ARBOR_INGEST_DATABASE_POOL_SIZE": "3",
        "ARBOR_INGEST_KAFKA__REQUEST_TIMEOUT_MS": "10000",
    }
    # Migrated in-process: a second interpreter start costs seconds on a busy box.
    await upgrade_async(MIGRATIONS, namespace.postgres.url, namespace.schema("ingest"))
    return ServiceProcess("arbor_ingest", env, port, log_dir / "ingest.log")


def effects_process(
    namespace: Namespace,
    log_dir: Path,
    *,
    replica: str = "effects",
    schema: str | None = None,
) -> ServiceProcess:
    """The effects app as a process, in the namespace's ``effects`` schema by default.

    Replicas share the schema and the consumer group; another ``schema`` (with the
    group's offsets reset) is a replay into a fresh database.
    """
    port = free_port()
    env = namespace.env(effects_app.SERVICE, "ARBOR_EFFECTS_", port) | {
        "ARBOR_EFFECTS_DATABASE_SCHEMA": schema or namespace.schema("effects"),
        "ARBOR_EFFECTS_LOG_FORMAT": "console",
        "ARBOR_EFFECTS_DATABASE_POOL_SIZE": "2",
        # A short session lets a paused replica lose its partitions quickly.
        "ARBOR_EFFECTS_KAFKA__SESSION_TIMEOUT_MS": "6000",
    }
    return ServiceProcess(
        "tests.faults.effects_app", env, port, log_dir / f"{replica}.log"
    )


def invoice(number: int, customer: str | None = None) -> dict[str, Any]:
    """A canonical InvoiceIssued submission for ingest, id ``ev-inv-<number>``."""
    return {
        "id": f"ev-inv-{number}",
        "type": "InvoiceIssued",
        "data": {
            "customer_id": customer or f"cus-{number % 7}",
            "invoice_id": f"inv-{number}",
            "currency": "EUR",
            "amount_minor": 10_000 + number,
            "issue_date": "2024-03-01",
            "due_date": "2024-03-31",
            "issued_at": "2024-03-01T09:00:00+01:00",
        },
    }


async def post_signed(client: httpx.AsyncClient, path: str, payload: Any) -> int:
    """POST ``payload`` signed by the test publisher; the status code."""
    body = orjson.dumps(payload)
    headers = sign(body, KEY_ID, SECRET, datetime.now(UTC))
    headers["content-type"] = "application/json"
    response = await client.post(path, content=body, headers=headers)
    return response.status_code


def ingest_client(process: ServiceProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=process.url, timeout=HTTP_TIMEOUT_SECONDS)


async def metric(process: ServiceProcess, name: str, **labels: str) -> float | None:
    """The value of one sample on the process's /metrics, None when absent."""
    async with httpx.AsyncClient(base_url=process.url, timeout=5) as client:
        text = (await client.get("/metrics")).text
    total: float | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total = (total or 0.0) + sample.value
    return total


async def readyz(process: ServiceProcess) -> int | None:
    """The /readyz status, or None when the process does not answer."""
    try:
        async with httpx.AsyncClient(base_url=process.url, timeout=5) as client:
            return (await client.get("/readyz")).status_code
    except httpx.TransportError:
        return None


def outbox_drained(
    process: ServiceProcess, namespace: Namespace
) -> Callable[[], Awaitable[bool]]:
    """A probe: no unsent outbox row is left, and /metrics reports a zero backlog.

    The table is the truth; the gauge is only refreshed after a successful relay
    round, so on its own a stalled relay would pass for a drained one.
    """

    async def probe() -> bool:
        engine = create_engine(namespace.postgres.url, namespace.schema("ingest"))
        try:
            async with engine.connect() as connection:
                unsent = await connection.scalar(sa.text("SELECT count(*) FROM outbox"))
        finally:
            await engine.dispose()
        backlog = await metric(process, "arbor_ingest_outbox_backlog_events")
        return unsent == 0 and backlog == 0

    return probe


def invoices_topic(namespace: Namespace) -> str:
    return f"{namespace.name}.{topics.INVOICES}"


async def topic_ce_ids(bootstrap: str, topic: str) -> list[str]:
    """Every record's ``ce_id`` on ``topic``, from the start to the current end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(TOPIC_PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        ids: list[str] = []
        while await _behind(consumer, ends):
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                ids += [_ce_id(r.headers) for r in records]
    finally:
        await consumer.stop()
    return ids


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


def _ce_id(headers: Iterable[tuple[str, bytes]]) -> str:
    return next(value.decode() for name, value in headers if name == "ce_id")


async def committed_offsets(bootstrap: str, group: str) -> int:
    """The sum of ``group``'s committed offsets over all partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(max(meta.offset, 0) for meta in offsets.values())


def effects_group(namespace: Namespace) -> str:
    return f"{namespace.name}.arbor.{effects_app.SERVICE}.{effects_app.CONSUMER}"


async def applications(engine: AsyncEngine) -> Counter[str]:
    """How often the effects app applied each invoice (``times`` per invoice id)."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.text("SELECT invoice_id, times FROM applications")
        )
        return Counter({invoice_id: times for invoice_id, times in rows})


async def all_applied(engine: AsyncEngine, expected: set[str]) -> Counter[str] | None:
    """The applications once every expected invoice has one, else None."""
    try:
        applied = await applications(engine)
    except sa.exc.ProgrammingError:
        return None  # the app has not created its table yet
    return applied if expected <= set(applied) else None


async def wait_committed(bootstrap: str, group: str, total: int) -> None:
    async def reached() -> bool:
        return await committed_offsets(bootstrap, group) >= total

    await eventually(reached, timeout=60)


def pause(process: ServiceProcess) -> None:
    """SIGSTOP: the process keeps its sockets but stops heartbeating and working."""
    assert process.process is not None
    process.process.send_signal(signal.SIGSTOP)


def resume(process: ServiceProcess) -> None:
    assert process.process is not None
    process.process.send_signal(signal.SIGCONT)
