"""Deleting stored Idempotency-Key answers once their replay window has passed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from arbor_ingest.adapters import idempotency
from arbor_shared.clock import Clock
from arbor_shared.retry import Backoff
from arbor_shared.runtime import ServiceRuntime

logger = logging.getLogger(__name__)

PURGE_BATCH = 5_000
"""Answers deleted per transaction, so a large backlog never holds long locks."""


class KeyRetention:
    """Purges answers older than the window every ``every_seconds``, until stopped."""

    def __init__(
        self, window: timedelta, every_seconds: float, wall_clock: Clock
    ) -> None:
        self._window = window
        self._every_seconds = every_seconds
        self._wall_clock = wall_clock
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, runtime: ServiceRuntime) -> None:
        """Start the purge loop (an app start hook)."""
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(runtime), name="key-retention")

    async def stop(self, _runtime: ServiceRuntime) -> None:
        """End the loop (an app stop hook); a purge under way finishes first."""
        self._stopping.set()
        if self._task is not None:
            await asyncio.wait({self._task})

    async def purge_once(self, runtime: ServiceRuntime) -> int:
        """Delete every answer older than the window; return how many."""
        # Stored answers carry the database's commit time: the window is wall
        # time, whatever clock the service runs its events on.
        older_than = self._wall_clock.now() - self._window
        total = 0
        while True:
            async with runtime.sessions() as session, session.begin():
                deleted = await idempotency.purge(
                    session, older_than=older_than, limit=PURGE_BATCH
                )
            total += deleted
            if deleted < PURGE_BATCH:
                break
        if total:
            logger.info("deleted %d Idempotency-Key answers past their window", total)
        return total

    async def _run(self, runtime: ServiceRuntime) -> None:
        backoff = Backoff()
        pause = 0.0
        while not await self._stopped_within(pause):
            try:
                await self.purge_once(runtime)
                backoff = Backoff()
                pause = self._every_seconds
            except Exception as exc:  # noqa: BLE001 - loop boundary: retry later
                pause = backoff.next_delay()
                logger.warning("purging Idempotency-Key answers failed: %r", exc)

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        return self._stopping.is_set()
