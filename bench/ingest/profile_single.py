"""Profile single-event POSTs in-process: the server CPU of one request.

    uv run python -m bench.ingest.profile_single --requests 4000 [--concurrency 8]

Runs the ingest app (relay and tracing included) inside this process and calls it
as an ASGI application directly, with no HTTP client whose CPU would be counted: a
request is a scope, one body message and a collecting ``send``. Requests go in
waves of ``--concurrency``, so that group commit shares transactions as it does
under a steady rate. Prints the profile, the statements, and the process CPU per
request. Needs ``ARBOR_TEST_KAFKA_BOOTSTRAP`` and ``ARBOR_TEST_DATABASE_URL``,
except with ``--http-only``: each event is then answered as accepted without
being committed, which leaves the HTTP layer's CPU alone and is much steadier on
a loaded machine than a run that commits. The profiler times CPU, not wall
clock, and slows the run about tenfold: compare figures of ``--no-profile`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import time
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message

from arbor_ingest.bootstrap import MIGRATIONS, create_app
from arbor_ingest.handlers import Acceptance
from arbor_ingest.signing import sign
from arbor_shared.db.migrations import upgrade_async
from arbor_shared.telemetry import configure_tracing
from bench.ingest.profile import StatementTimes, _settings
from bench.ingest.run import KEY_ID, SECRET, _single_body, realistic_events


def _scope(body: bytes) -> dict[str, Any]:
    headers = sign(body, KEY_ID, SECRET, datetime.now(UTC))
    headers["Content-Type"] = "application/json"
    headers["Content-Length"] = str(len(body))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/events",
        "raw_path": b"/v1/events",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (name.lower().encode(), value.encode()) for name, value in headers.items()
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _post(app: ASGIApp, body: bytes) -> int:
    """One request straight through the ASGI app; its status code."""
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status: list[int] = []

    async def receive() -> Message:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # a client that stays connected
        raise AssertionError

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(_scope(body), receive, send)
    return status[0]


async def _post_all(app: ASGIApp, bodies: list[bytes], concurrency: int) -> int:
    accepted = 0
    for start in range(0, len(bodies), concurrency):
        wave = bodies[start : start + concurrency]
        codes = await asyncio.gather(*(_post(app, body) for body in wave))
        if any(code != 202 for code in codes):
            raise RuntimeError(f"POST /v1/events answered {codes}")
        accepted += len(codes)
    return accepted


class _CommittedAtOnce:
    """Stands in for the group committer: the HTTP layer's cost, nothing else."""

    async def accept(self, _publisher: str, event_id: str, _data: object) -> Any:
        return Acceptance(event_id, "accepted")


async def main(arguments: argparse.Namespace) -> None:
    configure_tracing("ingest", None)
    settings = _settings(arguments.bootstrap, arguments.database_url)
    events = realistic_events(arguments.requests + arguments.warmup)
    bodies = [_single_body(event) for event in events]
    app = create_app(settings)
    # CPU time, not wall time: on a shared machine a preempted call is not slow.
    profiler = cProfile.Profile(time.process_time)
    statements = StatementTimes(app.state.runtime.engine)
    lifespan: Any = contextlib.nullcontext()
    if arguments.http_only:
        app.state.single_events = _CommittedAtOnce()
    else:
        url = settings.database_url.get_secret_value()
        await upgrade_async(MIGRATIONS, url, settings.database_schema)
        lifespan = app.router.lifespan_context(app)
    async with lifespan:
        await _post_all(app, bodies[: arguments.warmup], arguments.concurrency)
        statements.seconds.clear()
        statements.calls.clear()
        cpu, wall = time.process_time(), time.perf_counter()
        if arguments.profile:
            profiler.enable()
        accepted = await _post_all(
            app, bodies[arguments.warmup :], arguments.concurrency
        )
        profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if arguments.dump:
        profiler.dump_stats(arguments.dump)
    if arguments.profile:
        stats = pstats.Stats(profiler).strip_dirs()
        stats.sort_stats("cumulative").print_stats(arguments.top)
        stats.sort_stats("tottime").print_stats(arguments.top)
    statements.print()
    print(
        f"{accepted} accepted, {wall:.1f} s wall, {cpu:.2f} s CPU: "
        f"{1e6 * cpu / max(accepted, 1):.0f} us per request "
        f"(profiled: {arguments.profile}; load {os.getloadavg()[0]:.2f})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4_000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument(
        "--profile", action=argparse.BooleanOptionalAction, default=True
    )
    parser.add_argument(
        "--http-only",
        action="store_true",
        help="answer without committing: no database, broker or relay",
    )
    parser.add_argument("--dump", help="also write the raw profile to this file")
    # With --http-only nothing connects; the placeholders only satisfy the settings.
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("ARBOR_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:1"),
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "ARBOR_TEST_DATABASE_URL", "postgresql+asyncpg://arbor@127.0.0.1:1/arbor"
        ),
    )
    asyncio.run(main(parser.parse_args()))
