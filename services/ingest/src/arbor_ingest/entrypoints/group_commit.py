"""Group commit: concurrent single events share one transaction.

A transaction's fixed cost (begin, the claim, lock and lookup statements, commit) is
most of what one event costs. Single-event requests without an Idempotency-Key wait in
one queue per app; one committer task takes whatever queued while its previous
transaction ran and accepts it in one transaction, with one result per request. There
is no waiting window: a lone request is committed at once, as before.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from opentelemetry import trace
from prometheus_client import Histogram

from arbor_ingest import handlers
from arbor_ingest.handlers import Acceptance
from arbor_shared.events import EventData
from arbor_shared.failpoints import failpoint
from arbor_shared.runtime import ServiceRuntime

logger = logging.getLogger(__name__)

# A bound on one transaction's locks and statement sizes; far below the 5,000 events
# one batch statement may carry.
MAX_GROUP_EVENTS = 500
_GROUP_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)
_tracer = trace.get_tracer(__name__)


@dataclass(frozen=True)
class _Waiting:
    """One request's event, the context it came from, and where its answer goes."""

    publisher: str
    event_id: str
    data: EventData
    context: contextvars.Context
    answer: asyncio.Future[Acceptance]


class SingleEventCommitter:
    """Commits the single events that queued together, one transaction per publisher.

    A result is handed back only after its transaction committed; when the
    transaction fails, every request of the group gets that error, as it would
    have alone.
    """

    def __init__(
        self, runtime: ServiceRuntime, *, max_group: int = MAX_GROUP_EVENTS
    ) -> None:
        self._runtime = runtime
        self._max_group = max_group
        self._waiting: deque[_Waiting] = deque()
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._group_sizes = Histogram(
            "arbor_ingest_single_event_group_size",
            "Single-event requests accepted together in one transaction",
            registry=runtime.metrics.registry,
            buckets=_GROUP_SIZE_BUCKETS,
        )

    @property
    def running(self) -> bool:
        """True while the committer task takes events from the queue."""
        return self._task is not None and not self._task.done() and not self._stopping

    async def start(self, _runtime: ServiceRuntime) -> None:
        """Start the committer task (an app start hook)."""
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="single-event-committer")
        self._task.add_done_callback(_report_crash)

    async def stop(self, _runtime: ServiceRuntime) -> None:
        """Commit what is still waiting, then end the task (an app stop hook)."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await asyncio.wait({self._task})

    async def accept(
        self, publisher: str, event_id: str, data: EventData
    ) -> Acceptance:
        """Accept one event with whatever else is waiting; return once committed."""
        waiting = _Waiting(
            publisher,
            event_id,
            data,
            contextvars.copy_context(),
            asyncio.get_running_loop().create_future(),
        )
        if self.running:
            self._waiting.append(waiting)
            self._wakeup.set()
        else:
            # Stopping, or never started: nobody would take it from the queue.
            await self._commit([waiting])
        return await waiting.answer

    async def _run(self) -> None:
        try:
            while self._waiting or not self._stopping:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._waiting:
                    await self._commit(self._next_group())
        finally:
            # Only a cancelled task leaves requests here; they must not wait forever.
            for waiting in self._waiting:
                waiting.answer.cancel()

    def _next_group(self) -> list[_Waiting]:
        """The oldest waiting events, up to the bound and the first repeated event id.

        A repeated id waits for the next transaction, so that it meets the first one
        committed and is answered exactly as it would be one request after the other.
        """
        group: list[_Waiting] = []
        event_ids: set[str] = set()
        while self._waiting and len(group) < self._max_group:
            if self._waiting[0].event_id in event_ids:
                break
            waiting = self._waiting.popleft()
            # A request cancelled while it waited has nobody left to answer.
            if not waiting.answer.done():
                event_ids.add(waiting.event_id)
                group.append(waiting)
        return group

    async def _commit(self, group: list[_Waiting]) -> None:
        # accept_many reports (and logs) its results for one publisher.
        shares: dict[str, list[_Waiting]] = {}
        for waiting in group:
            shares.setdefault(waiting.publisher, []).append(waiting)
        for publisher, share in shares.items():
            await self._commit_share(publisher, share)

    async def _commit_share(self, publisher: str, share: list[_Waiting]) -> None:
        self._group_sizes.observe(len(share))
        try:
            results = await self._accept_in_one_transaction(publisher, share)
        except asyncio.CancelledError:
            for waiting in share:
                waiting.answer.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - each request raises it as its own
            for waiting in share:
                _settle(waiting, exc)
            return
        # RELIABILITY F1: dying here, committed but unanswered, must be harmless.
        failpoint("ingest_after_commit")
        for waiting, result in zip(share, results, strict=True):
            _settle(waiting, result)

    async def _accept_in_one_transaction(
        self, publisher: str, share: list[_Waiting]
    ) -> list[Acceptance]:
        runtime = self._runtime
        items = [(w.event_id, w.data) for w in share]
        contexts = [w.context for w in share]
        with _tracer.start_as_current_span(
            "ingest single-event group",
            links=_request_spans(share),
            attributes={"arbor.group_size": len(share)},
        ):
            async with runtime.sessions() as session, session.begin():
                return await handlers.accept_many(
                    session,
                    runtime.outbox,
                    items,
                    publisher=publisher,
                    contexts=contexts,
                )


def _settle(waiting: _Waiting, outcome: Acceptance | Exception) -> None:
    if waiting.answer.done():  # the request was cancelled in the meantime
        return
    if isinstance(outcome, Exception):
        waiting.answer.set_exception(outcome)
    else:
        waiting.answer.set_result(outcome)


def _request_spans(share: list[_Waiting]) -> list[trace.Link]:
    # The transaction is a span of its own; links lead from it to each request.
    spans = [w.context.run(trace.get_current_span).get_span_context() for w in share]
    return [trace.Link(span) for span in spans if span.is_valid]


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.error(
            "single-event committer crashed; events commit alone", exc_info=error
        )


async def _committer(request: Request) -> SingleEventCommitter:
    # async on purpose: a plain ``def`` dependency would run in the thread pool.
    committer: SingleEventCommitter = request.app.state.single_events
    return committer


SingleEvents = Annotated[SingleEventCommitter, Depends(_committer)]
"""The app's single-event committer, for route functions."""
