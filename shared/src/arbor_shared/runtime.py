"""One service's moving parts, wired once: database, outbox relay, consumers, clock."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from arbor_shared import topics as topic_names
from arbor_shared.clock import EPOCH, Clock, EventClock, SystemClock
from arbor_shared.db import MessagingTables, create_engine, session_factory
from arbor_shared.events import ClockAdvanced
from arbor_shared.kafka.clients import create_consumer, create_producer, ensure_topics
from arbor_shared.kafka.consumer import ConsumerLoop, Context, Handler
from arbor_shared.kafka.outbox import Outbox
from arbor_shared.kafka.relay import OutboxRelay
from arbor_shared.observability import PipelineMetrics
from arbor_shared.settings import ServiceSettings
from arbor_shared.topics import TopicNames, dead_letter_topic

logger = logging.getLogger(__name__)


@dataclass
class ServiceRuntime:
    """Everything a service needs at run time, built from its settings."""

    service: str
    settings: ServiceSettings
    tables: MessagingTables
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    topics: TopicNames
    clock: Clock
    metrics: PipelineMetrics
    outbox: Outbox
    consumers: list[ConsumerLoop] = field(default_factory=list)
    relay: OutboxRelay | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def create(
        cls, service: str, settings: ServiceSettings, tables: MessagingTables
    ) -> ServiceRuntime:
        """Build the runtime; nothing connects until :meth:`start`."""
        engine = create_engine(
            settings.database_url.get_secret_value(),
            settings.database_schema,
            pool_size=settings.database_pool_size,
        )
        topics = TopicNames(settings.kafka.topic_prefix)
        clock: Clock = SystemClock() if settings.clock == "wall" else EventClock(EPOCH)
        return cls(
            service=service,
            settings=settings,
            tables=tables,
            engine=engine,
            sessions=session_factory(engine),
            topics=topics,
            clock=clock,
            metrics=PipelineMetrics.create(f"arbor_{service.replace('-', '_')}"),
            outbox=Outbox(
                tables.outbox, topics=topics, source=f"arbor/{service}", clock=clock
            ),
        )

    def add_consumer(
        self, name: str, topics: list[str], handlers: Mapping[str, Handler]
    ) -> ConsumerLoop:
        """Register a consumer of the base ``topics`` in group ``<service>.<name>``."""
        subscribed = list(topics)
        all_handlers = dict(handlers)
        if isinstance(self.clock, EventClock):
            subscribed.append(topic_names.CLOCK)
            all_handlers[ClockAdvanced.event_type] = self._advance_clock
        group = self.topics(f"arbor.{self.service}.{name}")
        loop = ConsumerLoop(
            name=f"{self.service}.{name}",
            make_consumer=functools.partial(
                create_consumer,
                self.settings.kafka,
                group_id=group,
                client_id=f"{self.service}-{name}",
                topics=[self.topics(t) for t in subscribed],
            ),
            handlers=all_handlers,
            sessions=self.sessions,
            inbox=self.tables.inbox,
            outbox=self.outbox,
            clock=self.clock,
            metrics=self.metrics,
        )
        self.consumers.append(loop)
        return loop

    async def start(self) -> None:
        """Create topics, restore the clock, start the relay and the consumers."""
        await ensure_topics(self.settings.kafka, self.topics.all_with_dead_letters())
        await self._restore_clock()
        self.relay = OutboxRelay(
            table=self.tables.outbox,
            sessions=self.sessions,
            make_producer=functools.partial(
                create_producer, self.settings.kafka, f"{self.service}-relay"
            ),
            metrics=self.metrics,
            wakeup=self.outbox.wakeup,
            lock_name=f"outbox:{self.settings.database_schema}",
            batch_size=self.settings.relay_batch_size,
        )
        self._spawn(self.relay.run())
        if self.settings.consumers_enabled:
            for consumer in self.consumers:
                self._spawn(consumer.run())
        logger.info("%s started with %d consumers", self.service, len(self.consumers))

    async def stop(self) -> None:
        """Finish the batches in flight, leave the groups, flush, disconnect."""
        for consumer in self.consumers:
            consumer.stop()
        if self.relay is not None:
            self.relay.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.engine.dispose()
        logger.info("%s stopped", self.service)

    async def check_ready(self) -> dict[str, bool]:
        """Readiness: database reachable, relay healthy, every consumer assigned."""
        checks = {"database": await self._database_reachable()}
        checks["relay"] = self.relay is not None and self.relay.healthy
        if self.settings.consumers_enabled:
            for consumer in self.consumers:
                checks[f"consumer:{consumer.name}"] = consumer.assigned
        return checks

    def dead_letter_topics(self) -> list[str]:
        return [self.topics(dead_letter_topic(t)) for t in topic_names.ALL]

    def _spawn(self, work: object) -> None:
        task: asyncio.Task[None] = asyncio.create_task(work)  # type: ignore[arg-type]
        task.add_done_callback(_report_crash)
        self._tasks.append(task)

    async def _database_reachable(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(sa.text("SELECT 1"))
        except Exception:  # noqa: BLE001 - a probe: any failure means not ready
            return False
        return True

    async def _restore_clock(self) -> None:
        if not isinstance(self.clock, EventClock):
            return
        async with self.sessions() as session:
            saved = await session.scalar(sa.select(self.tables.clock.c.now))
        if saved is not None:
            self.clock.advance_to(saved)

    async def _advance_clock(self, ctx: Context, event: ClockAdvanced) -> None:
        assert isinstance(self.clock, EventClock)
        if not self.clock.advance_to(event.now):
            return
        table = self.tables.clock
        await ctx.session.execute(
            insert(table)
            .values(id=1, now=event.now)
            .on_conflict_do_update(index_elements=[table.c.id], set_={"now": event.now})
        )


def _report_crash(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        logger.error("background task %s crashed", task.get_name(), exc_info=error)


async def cancel(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for it to finish."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
