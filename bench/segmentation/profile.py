"""Profile segmentation in-process: where the CPU of one consumed event goes.

    uv run python -m bench.segmentation.profile 20000 2 [--top 40] [--dump FILE]

Produces the same backlog as ``throughput.py`` (same options), runs the service in
this process and profiles it with cProfile from the first event applied until the
inbox holds every event, then prints the functions by cumulative and by own time
and the process CPU per event (profiled, so higher than the benchmark's).
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import time

from arbor_segmentation.bootstrap import create_server_app
from arbor_shared.runtime import ServiceRuntime
from bench.segmentation.throughput import backlogged, consume, parser
from tests.support import running


async def main() -> None:
    options = parser(__doc__.splitlines()[0])
    options.add_argument("--top", type=int, default=40)
    options.add_argument("--dump", help="also write the raw profile to this file")
    arguments = options.parse_args()
    # CPU time, not wall time: the process shares two cores with its database.
    profiler = cProfile.Profile(time.process_time)
    async with backlogged(arguments) as (_, settings, events, _):
        app = create_server_app(settings)
        runtime: ServiceRuntime = app.state.runtime
        async with running(app):
            profiler.enable()
            consumed = await consume(runtime, len(events))
            profiler.disable()
    if arguments.dump:
        profiler.dump_stats(arguments.dump)
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("cumulative").print_stats(arguments.top)
    stats.sort_stats("tottime").print_stats(arguments.top)
    print(
        f"{len(events)} events, {consumed.wall:.1f} s wall, {consumed.cpu:.1f} s CPU "
        f"({1e6 * consumed.cpu / len(events):.1f} us/event, profiled)"
    )


if __name__ == "__main__":
    asyncio.run(main())
