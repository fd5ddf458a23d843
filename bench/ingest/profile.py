"""Profile the batch path in-process: where the CPU of one accepted event goes.

    uv run python -m bench.ingest.profile --events 20000 [--batch 2000] [--top 40]

Runs the ingest app (relay included) inside this process, posts realistic batches
through ``httpx.ASGITransport`` under cProfile and prints the functions by
cumulative and by own time, then the process CPU time per accepted event, which a
loaded machine does not change. Needs ``ARBOR_TEST_KAFKA_BOOTSTRAP`` and
``ARBOR_TEST_DATABASE_URL`` pointing at a running broker and server.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import secrets
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from arbor_ingest.bootstrap import MIGRATIONS, create_app
from arbor_ingest.config import IngestSettings
from arbor_ingest.signing import sign
from arbor_shared.db.migrations import upgrade_async
from arbor_shared.local_issuer import AUDIENCE, ISSUER
from arbor_shared.settings import KafkaSettings
from bench.ingest.cpu import postmaster_pid, tree_cpu_seconds
from bench.ingest.run import KEY_ID, SECRET, batch_bodies, realistic_events


def _settings(bootstrap: str, database_url: str) -> IngestSettings:
    name = f"prof{secrets.token_hex(3)}"
    publishers = [{"key_id": KEY_ID, "secret": SECRET, "scopes": ["events:write"]}]
    return IngestSettings(
        database_url=SecretStr(database_url),
        database_schema=f"{name}_ingest",
        kafka=KafkaSettings(bootstrap=bootstrap, topic_prefix=name),
        oidc_issuer=ISSUER,
        oidc_audience=AUDIENCE,
        oidc_jwks_url="http://127.0.0.1:1/jwks.json",
        publishers=SecretStr(json.dumps(publishers)),
        rate_per_second=100_000,
        rate_burst=100_000,
        log_level="WARNING",
    )


class StatementTimes:
    """Wall time per SQL statement, from the cursor's start to its end."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        sync = engine.sync_engine
        sa.event.listen(sync, "before_cursor_execute", self._before)
        sa.event.listen(sync, "after_cursor_execute", self._after)

    def _before(self, conn: Any, _c: Any, _s: str, *_args: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn: Any, _c: Any, statement: str, *_args: Any) -> None:
        name = " ".join(statement.split())[:90]
        self.seconds[name] += time.perf_counter() - conn.info.pop("bench_started")
        self.calls[name] += 1

    def print(self) -> None:
        for name, seconds in sorted(self.seconds.items(), key=lambda kv: -kv[1]):
            print(f"{seconds:8.3f} s {self.calls[name]:6d}x  {name}")


class CollectorTimes:
    """Time the cyclic garbage collector spends, per generation."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.runs = [0, 0, 0]
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.seconds[info["generation"]] += time.perf_counter() - self._started
        self.runs[info["generation"]] += 1

    def print(self) -> None:
        for generation, seconds in enumerate(self.seconds):
            runs = self.runs[generation]
            print(f"gc generation {generation}: {runs} runs, {seconds:.3f} s")


async def _post_all(client: httpx.AsyncClient, bodies: list[bytes]) -> int:
    accepted = 0
    for body in bodies:
        headers = sign(body, KEY_ID, SECRET, datetime.now(UTC))
        headers["Content-Type"] = "application/json"
        response = await client.post("/v1/events:batch", content=body, headers=headers)
        response.raise_for_status()
        accepted += response.json()["accepted"]
    return accepted


async def main(arguments: argparse.Namespace) -> None:
    settings = _settings(arguments.bootstrap, arguments.database_url)
    await upgrade_async(
        MIGRATIONS, settings.database_url.get_secret_value(), settings.database_schema
    )
    bodies = batch_bodies(realistic_events(arguments.events), arguments.batch)
    app = create_app(settings)
    profiler = cProfile.Profile()
    statements = StatementTimes(app.state.runtime.engine)
    postgres = await postmaster_pid(arguments.database_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://i") as http:
            collector = CollectorTimes()
            if arguments.freeze:
                gc.collect()
                gc.freeze()
            if arguments.gc_threshold:
                gc.set_threshold(arguments.gc_threshold, 10, 10)
            cpu, wall = time.process_time(), time.perf_counter()
            database_cpu = tree_cpu_seconds(postgres)
            if arguments.profile:
                profiler.enable()
            accepted = await _post_all(http, bodies)
            profiler.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            database_cpu = tree_cpu_seconds(postgres) - database_cpu
    if arguments.dump:
        profiler.dump_stats(arguments.dump)
    if arguments.profile:
        stats = pstats.Stats(profiler).strip_dirs()
        stats.sort_stats("cumulative").print_stats(arguments.top)
        stats.sort_stats("tottime").print_stats(arguments.top)
    statements.print()
    collector.print()
    print(
        f"{accepted} accepted, {wall:.1f} s wall, {cpu:.1f} s CPU "
        f"({1e6 * cpu / max(accepted, 1):.0f} us/event, client included); "
        f"PostgreSQL {database_cpu:.1f} s CPU "
        f"({1e6 * database_cpu / max(accepted, 1):.0f} us/event)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument(
        "--profile", action=argparse.BooleanOptionalAction, default=True
    )
    parser.add_argument("--freeze", action="store_true")
    parser.add_argument("--gc-threshold", type=int, default=0)
    parser.add_argument("--dump", help="also write the raw profile to this file")
    parser.add_argument(
        "--bootstrap", default=os.environ.get("ARBOR_TEST_KAFKA_BOOTSTRAP", "")
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("ARBOR_TEST_DATABASE_URL", "")
    )
    asyncio.run(main(parser.parse_args()))
