"""The gate that holds the demo feed while the services are behind it.

Simulated time only means something if the services keep up with it: a consumer that
falls days behind the clock finds dunning steps long overdue and cancels them as
missed. The gate asks how far behind they are before each clock step and waits,
within bounds, until they are close enough.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from typing import Protocol, Self

import httpx
from aiokafka.errors import KafkaError

from arbor_cli.backlog import BrokerLag, OutboxBacklog

logger = logging.getLogger(__name__)


class BacklogSource(Protocol):
    async def records_behind(self) -> int: ...


@dataclass
class GateStatus:
    """What the gate last saw and how long it has held the feed, for a summary."""

    limit: int
    behind: int | None = None
    paused_since: float | None = None
    pauses: int = 0
    paused_seconds: float = 0.0
    gave_up: int = 0

    def summary(self, now: float) -> str:
        """One line: whether the feed waits for the services, and how far behind."""
        if self.behind is None:
            state = "feed running: backlog not measured yet"
        elif self.paused_since is not None:
            state = (
                f"feed paused: {self.behind:,} records behind "
                f"(limit {self.limit:,}) for {now - self.paused_since:.0f} s"
            )
        else:
            state = (
                f"feed running: {self.behind:,} records behind (limit {self.limit:,})"
            )
        held = self.paused_seconds + (
            now - self.paused_since if self.paused_since is not None else 0.0
        )
        history = f"; paused {self.pauses:,} times, {held:.0f} s in all"
        if self.gave_up:
            history += (
                f", fed on {self.gave_up:,} times when the backlog stopped falling"
            )
        return state + history

    def pause(self, now: float) -> None:
        self.paused_since = now
        self.pauses += 1

    def resume(self, now: float, *, stalled: bool) -> None:
        if self.paused_since is not None:
            self.paused_seconds += now - self.paused_since
        self.paused_since = None
        if stalled:
            self.gave_up += 1


@dataclass
class Progress:
    """Whether a backlog is still falling: a new low within ``stall_seconds``."""

    stall_seconds: float
    lowest: int | None = None
    low_at: float = 0.0

    def stalled(self, behind: int, now: float) -> bool:
        if self.lowest is None or behind < self.lowest:
            self.lowest, self.low_at = behind, now
            return False
        return now - self.low_at >= self.stall_seconds


# Long enough for a consumer to finish a slow batch and commit, short enough that a
# stuck one still lets the demo move: one clock step per half minute.
STALL_SECONDS = 30.0
_MEASURE_SECONDS = 15.0


class FeedGate:
    """Holds the feed while the services are more than ``limit`` records behind.

    The wait is bounded: once the backlog has not reached a new low for
    ``stall_seconds`` the feed moves one more step, so a stuck consumer slows the
    feed to a crawl instead of stopping it. Entering the gate opens its sources.
    """

    def __init__(
        self,
        sources: Sequence[BacklogSource],
        *,
        limit: int,
        stall_seconds: float = STALL_SECONDS,
        poll_seconds: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sources = sources
        self._stall_seconds = stall_seconds
        self._poll_seconds = poll_seconds
        self._clock = clock
        self._stack = AsyncExitStack()
        self._blind = False
        self.status = GateStatus(limit)

    async def __aenter__(self) -> Self:
        for source in self._sources:
            if isinstance(source, AbstractAsyncContextManager):
                await self._stack.enter_async_context(source)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def wait_for_services(self) -> None:
        """Return once the services are at most ``limit`` behind, or stopped gaining."""
        behind = await self._measure()
        if behind is None or behind <= self.status.limit:
            return
        self.status.pause(self._clock())
        stalled = await self._wait_while_falling(behind)
        self.status.resume(self._clock(), stalled=stalled)
        if stalled:
            logger.warning(
                "services still %d records behind after %.0f s without progress; "
                "feeding one more step",
                self.status.behind,
                self._stall_seconds,
            )

    async def _wait_while_falling(self, behind: int) -> bool:
        progress = Progress(self._stall_seconds)
        while not progress.stalled(behind, self._clock()):
            await asyncio.sleep(self._poll_seconds)
            measured = await self._measure()
            if measured is None or measured <= self.status.limit:
                return False
            behind = measured
        return True

    async def _measure(self) -> int | None:
        try:
            behind = await asyncio.wait_for(self._total(), _MEASURE_SECONDS)
        except (KafkaError, httpx.HTTPError, OSError, TimeoutError) as error:
            # A gate that cannot see must not stop the feed: the services' own
            # readiness and logs say what is wrong. Once per outage, not per step.
            if not self._blind:
                logger.warning("backlog unknown, feeding on unchecked: %r", error)
            self._blind = True
            return None
        if self._blind:
            logger.info("backlog measured again: %d records behind", behind)
        self._blind = False
        self.status.behind = behind
        return behind

    async def _total(self) -> int:
        return sum([await source.records_behind() for source in self._sources])


def services_gate(
    *, bootstrap: str, ingest_url: str, limit: int, topic_prefix: str = ""
) -> FeedGate:
    """A gate on every arbor consumer group and on ingest's outbox."""
    sources: list[BacklogSource] = [
        BrokerLag(bootstrap, topic_prefix=topic_prefix),
        OutboxBacklog(ingest_url),
    ]
    return FeedGate(sources, limit=limit)
