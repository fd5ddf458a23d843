"""One scheduler pass in its own process, at a given instant: ``python -m ... NOW``.

Run with ``ARBOR_FAILPOINTS`` set, it dies hard where the failpoint says.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime

from arbor_dunning.adapters.metrics import DunningMetrics
from arbor_dunning.adapters.tables import messaging
from arbor_dunning.bootstrap import SERVICE, build_scheduler
from arbor_dunning.config import DunningSettings
from arbor_shared.clock import EventClock
from arbor_shared.runtime import ServiceRuntime


async def main(now: datetime) -> None:
    settings = DunningSettings()
    runtime = ServiceRuntime.create(SERVICE, settings, messaging)
    assert isinstance(runtime.clock, EventClock)
    runtime.clock.advance_to(now)
    scheduler = build_scheduler(
        runtime, settings, DunningMetrics.create(runtime.metrics.registry)
    )
    try:
        await scheduler.tick()
    finally:
        await runtime.engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(datetime.fromisoformat(sys.argv[1])))
