"""Shared plumbing for the benchmarks: infrastructure, services, percentiles."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.infra import start_kafka, start_postgres

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Infra:
    bootstrap: str
    database_url: str


@contextmanager
def infrastructure() -> Iterator[Infra]:
    """Reuse ARBOR_BENCH_KAFKA / ARBOR_BENCH_DATABASE_URL, or start private ones."""
    bootstrap = os.environ.get("ARBOR_BENCH_KAFKA")
    database = os.environ.get("ARBOR_BENCH_DATABASE_URL")
    if bootstrap and database:
        yield Infra(bootstrap, database)
        return
    kafka_dir = Path(tempfile.mkdtemp(prefix="arbor-bench-kafka-"))
    pg_dir = Path(tempfile.mkdtemp(prefix="arbor-bench-pg-"))
    pg_dir.chmod(0o755)
    kafka = start_kafka(kafka_dir)
    postgres = start_postgres(pg_dir)
    try:
        yield Infra(kafka.bootstrap, postgres.url)
    finally:
        kafka.stop()
        postgres.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def service(module: str, env: dict[str, str], log: Path) -> Iterator[None]:
    """Migrate and run ``python -m module serve``; stop it afterwards."""
    full_env = os.environ | env
    subprocess.run(
        [sys.executable, "-m", module, "migrate"], env=full_env, check=True, timeout=120
    )
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", module, "serve"],
            env=full_env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield
    finally:
        process.terminate()
        process.wait(60)


READY_SECONDS = 120.0


async def wait_ready(url: str) -> None:
    deadline = time.monotonic() + READY_SECONDS
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.3)
    raise TimeoutError(f"{url} not ready")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(round(fraction * (len(ordered) - 1)), len(ordered) - 1)
    return ordered[index]


def write_results(folder: Path, results: dict[str, object]) -> None:
    (folder / "results.json").write_text(json.dumps(results, indent=2) + "\n")


async def delete_topics(bootstrap: str, *prefixes: str) -> None:
    """Delete a run's topics: every partition holds open files on the one broker."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(prefixes)]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


def summary(latencies_ms: list[float]) -> dict[str, float]:
    """The percentiles the benchmarks report, in milliseconds."""
    return {
        "p50_ms": round(percentile(latencies_ms, 0.5), 1),
        "p90_ms": round(percentile(latencies_ms, 0.9), 1),
        "p99_ms": round(percentile(latencies_ms, 0.99), 1),
        "max_ms": round(max(latencies_ms, default=float("nan")), 1),
    }


@contextlib.asynccontextmanager
async def load_samples(every: float = 1.0) -> AsyncIterator[list[float]]:
    """The 1-minute load average, sampled every ``every`` s while inside."""
    samples: list[float] = []

    async def sample() -> None:
        while True:
            samples.append(round(os.getloadavg()[0], 2))
            await asyncio.sleep(every)

    task = asyncio.create_task(sample())
    try:
        yield samples
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def plain_url(database_url: str) -> str:
    """The SQLAlchemy URL the services take, as asyncpg wants it."""
    return database_url.replace("+asyncpg", "")


async def drop_schemas(database_url: str, *schemas: str) -> None:
    connection = await asyncpg.connect(plain_url(database_url))
    try:
        for schema in schemas:
            await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await connection.close()


class Notifications:
    """The ``perf_counter`` moment each payload was first notified on a channel.

    PostgreSQL delivers a notification only when the sending transaction commits, so
    its arrival marks the commit: a little late (it includes the delivery to this
    process), never early.
    """

    def __init__(self, expected: int) -> None:
        self.seen_at: dict[str, float] = {}
        self._expected = expected
        self._everyone: asyncio.Future[None] | None = None
        self._connection: asyncpg.Connection | None = None

    async def start(self, database_url: str, channel: str, trigger: str) -> None:
        """Create ``trigger`` (SQL that notifies ``channel``) and start listening."""
        self._everyone = asyncio.get_running_loop().create_future()
        self._connection = await asyncpg.connect(plain_url(database_url))
        await self._connection.execute(trigger)
        await self._connection.add_listener(channel, self._arrived)

    async def wait(self, seconds: float) -> bool:
        """Wait until every expected payload was seen; False if time ran out."""
        assert self._everyone is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._everyone), seconds)
        return self._everyone.done()

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    def _arrived(self, *args: object) -> None:
        self.seen_at.setdefault(str(args[-1]), time.perf_counter())
        everyone = self._everyone
        if len(self.seen_at) >= self._expected and everyone and not everyone.done():
            everyone.set_result(None)


_SETTLING = {b"InvoiceBalanceChanged", b"InvoiceSettled"}


async def produced_at(bootstrap: str, topic: str, partitions: int) -> dict[str, float]:
    """Wall time (s) each payment's first ledger fact was handed to the producer.

    Keyed by invoice id; only the balance changes and settlements caused by a
    payment of the benchmark (their causation id is ``pay-…``) count. The broker's
    record timestamps are set by the relay's producer when it takes each record, on
    the same machine's wall clock.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        return await _read_to_end(consumer, await consumer.end_offsets(parts))
    finally:
        await consumer.stop()


async def _read_to_end(
    consumer: AIOKafkaConsumer, ends: Mapping[TopicPartition, int]
) -> dict[str, float]:
    first: dict[str, float] = {}
    while await _behind(consumer, ends):
        batch = await consumer.getmany(timeout_ms=1000)
        for record in (r for records in batch.values() for r in records):
            headers = dict(record.headers)
            if headers.get("ce_type") not in _SETTLING:
                continue
            if not headers.get("ce_causationid", b"").startswith(b"pay-"):
                continue
            invoice = str(orjson.loads(record.value)["invoice_id"])
            moment = record.timestamp / 1000
            first[invoice] = min(first.get(invoice, moment), moment)
    return first


async def _behind(
    consumer: AIOKafkaConsumer, ends: Mapping[TopicPartition, int]
) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False
