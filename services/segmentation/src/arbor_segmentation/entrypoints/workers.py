"""Background work beside the consumer: due-date timers, re-scores, model snapshots."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import sqlalchemy as sa

from arbor_segmentation.adapters import definitions, models
from arbor_segmentation.config import SegmentationSettings
from arbor_segmentation.domain import defaults
from arbor_segmentation.handlers import Segmenter
from arbor_shared.retry import Backoff
from arbor_shared.runtime import ServiceRuntime

logger = logging.getLogger(__name__)


@dataclass
class Workers:
    """Runs the timer loop, the re-score loop and the model saver until stopped."""

    settings: SegmentationSettings
    timers: Segmenter
    rescores: Segmenter
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _saved_examples: int = -1

    async def start(self, runtime: ServiceRuntime) -> None:
        """Restore the model, seed the first definition, start the loops."""
        await self._restore_model(runtime)
        await seed_definition(runtime)
        self._stopping.clear()
        for work in (self._run_timers, self._run_rescores, self._run_saver):
            self._tasks.append(asyncio.create_task(self._forever(runtime, work)))

    async def stop(self, runtime: ServiceRuntime) -> None:
        self._stopping.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self._save_model(runtime)

    async def _forever(
        self,
        runtime: ServiceRuntime,
        work: Callable[[ServiceRuntime], Awaitable[float]],
    ) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                pause = await work(runtime)
                backoff = Backoff()
            except Exception as exc:  # noqa: BLE001 - loop boundary: retry later
                pause = backoff.next_delay()
                logger.warning(
                    "segmentation worker %s failed, retrying in %.1f s: %r",
                    work.__name__,
                    pause,
                    exc,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=pause)

    async def _run_timers(self, runtime: ServiceRuntime) -> float:
        limit = self.settings.timer_batch_size
        try:
            async with runtime.sessions() as session, session.begin():
                fired = await self.timers.on_due_timers(
                    session, runtime.outbox, runtime.clock.now(), limit
                )
        except BaseException:
            self.timers.moves.discard()
            raise
        await self.timers.moves.flush()
        return 0.0 if fired >= limit else self.settings.timer_poll_seconds

    async def _run_rescores(self, runtime: ServiceRuntime) -> float:
        async with runtime.sessions() as session:
            pending = await definitions.running_activation_ids(session)
        for activation_id in pending:
            try:
                if not await self._rescore(runtime, activation_id):
                    continue
            except BaseException:
                self.rescores.moves.discard()
                raise
            await self.rescores.moves.flush()
            return 0.0
        return self.settings.rescore_poll_seconds

    async def _rescore(self, runtime: ServiceRuntime, activation_id: str) -> bool:
        # The page, its moves, their events and the cursor commit together: a crash
        # mid-re-score resumes from the last committed page and publishes nothing twice.
        async with runtime.sessions() as session, session.begin():
            activation = await definitions.get_activation(
                session, activation_id, lock=True
            )
            if activation is None or activation.status != "running":
                return False
            await self.rescores.rescore_batch(
                session,
                runtime.outbox,
                activation,
                now=runtime.clock.now(),
                limit=self.settings.rescore_batch_size,
            )
        return True

    async def _run_saver(self, runtime: ServiceRuntime) -> float:
        await self._save_model(runtime)
        return self.settings.model_save_seconds

    async def _restore_model(self, runtime: ServiceRuntime) -> None:
        async with runtime.sessions() as session:
            stored = await models.load(session)
        if stored is not None:
            self.timers.model.adopt(stored)
            self._saved_examples = stored.examples
            logger.info("late-payment model restored (%d examples)", stored.examples)

    async def _save_model(self, runtime: ServiceRuntime) -> None:
        # Known limit: each replica learns from the partitions it owns, and the last
        # to save wins. It goes away when one process does the learning (its own
        # consumer of settlements) and the replicas only load its snapshots.
        model = self.timers.model
        if model.examples == self._saved_examples:
            return
        async with runtime.sessions() as session, session.begin():
            await models.save(session, model, runtime.clock.now())
        self._saved_examples = model.examples


async def seed_definition(runtime: ServiceRuntime) -> None:
    """Store and activate the seeded definition if none exists yet."""
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext('cohorts'))")
        )
        if await definitions.list_all(session):
            return
        stored = await definitions.add(
            session,
            list(defaults.SEED_RULES),
            defaults.DEFAULT_COHORT,
            description="Seeded on first start",
            created_by="seed",
            at=runtime.clock.now(),
            status="active",
        )
    logger.info("seeded cohort definition %d", stored.definition.version)
