"""Shared plumbing for the benchmarks: infrastructure, services, percentiles."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
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
