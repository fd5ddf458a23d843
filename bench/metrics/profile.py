"""Profile an in-process rebuild: where the CPU of one replayed event goes.

    uv run python -m bench.metrics.profile --events 50000 [--via-loop] [--top 40]

Produces ``--events`` ledger facts to a private topic, then runs the rebuild under
cProfile and prints the functions by cumulative and by own time, with the process
CPU time per event (the machine is shared, so wall time says little). Needs the same
``ARBOR_TEST_KAFKA_BOOTSTRAP`` and ``ARBOR_TEST_DATABASE_URL`` as ``run.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import time
import uuid

from arbor_metrics.entrypoints.rebuild import rebuild
from arbor_shared import topics
from arbor_shared.kafka.clients import ensure_topics
from bench.common import delete_topics, drop_schemas
from bench.metrics.run import (
    _encode,
    _settings,
    billing_events,
    produce_all,
)


async def main(arguments: argparse.Namespace) -> None:
    url = arguments.database_url
    prefix = f"prof{uuid.uuid4().hex[:8]}"
    settings = _settings(url, arguments.bootstrap, prefix, f"{prefix}_metrics")
    await ensure_topics(settings.kafka, [prefix + "." + t for t in topics.ALL])
    records = [_encode(e) for _, e in billing_events(arguments.events)]
    await produce_all(arguments.bootstrap, prefix + "." + topics.LEDGER, records)
    profiler = cProfile.Profile()
    cpu, wall = time.process_time(), time.perf_counter()
    profiler.enable()
    report = await rebuild(
        settings, schema=f"{prefix}_rebuild", via_loop=arguments.via_loop
    )
    profiler.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await drop_schemas(url, f"{prefix}_rebuild")
    await delete_topics(arguments.bootstrap, prefix + ".")
    if arguments.dump:
        profiler.dump_stats(arguments.dump)
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("cumulative").print_stats(arguments.top)
    stats.sort_stats("tottime").print_stats(arguments.top)
    print(
        f"{report.records} records, {wall:.1f} s wall, {cpu:.1f} s CPU "
        f"({1e6 * cpu / report.records:.1f} us/event, profiled)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--via-loop", action="store_true")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--dump", help="also write the raw profile to this file")
    parser.add_argument(
        "--bootstrap", default=os.environ.get("ARBOR_TEST_KAFKA_BOOTSTRAP", "")
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("ARBOR_TEST_DATABASE_URL", "")
    )
    asyncio.run(main(parser.parse_args()))
