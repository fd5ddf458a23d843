"""Segmentation's reactions: events, fired due-date timers and re-scores.

Each reaction decides for many customers inside the caller's transaction: it locks
their state rows first, in id order (so the consumer, the timer loop and a re-score
never decide for the same customer at once), decides in memory, and stages its
writes and events in :class:`Changes`, written with one statement per table and
published through the outbox in that same transaction. Consumed events are queued
per batch and applied just before the batch's transaction commits.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from arbor_segmentation.adapters import deferred, definitions, repository
from arbor_segmentation.adapters.changes import Changes
from arbor_segmentation.adapters.definitions import Activation, DefinitionCache
from arbor_segmentation.adapters.moves import MoveCounter
from arbor_segmentation.domain import engine
from arbor_segmentation.domain.features import CustomerState, features, timers
from arbor_segmentation.domain.membership import Membership, decide
from arbor_segmentation.domain.prediction import (
    MODEL_VERSION,
    Assessment,
    LatePaymentModel,
)
from arbor_segmentation.work import Work
from arbor_shared.events import CohortChanged, EventData, InvoiceRiskAssessed
from arbor_shared.events.envelope import Envelope
from arbor_shared.kafka.classify import is_transient
from arbor_shared.kafka.consumer import Context, Handler
from arbor_shared.kafka.outbox import Outbox
from arbor_shared.telemetry import current_traceparent

logger = logging.getLogger(__name__)

_BATCH = "arbor_segmentation.batch"
_MAX_REJECTED = 1000


@dataclass(frozen=True)
class _Pending:
    """A consumed event waiting for the end of its batch."""

    event: EventData
    envelope: Envelope
    now: datetime
    trace_parent: str | None


class _EventRejectedError(Exception):
    """An event its handler cannot apply; the batch is retried to dead-letter it."""


@dataclass
class Segmenter:
    """The service layer: keeps features, memberships and risk current."""

    model: LatePaymentModel
    cache: DefinitionCache
    moves: MoveCounter
    _examples: dict[str, engine.Example] = field(default_factory=dict)
    _rejected: dict[str, Exception] = field(default_factory=dict)

    async def after_commit(self) -> None:
        """Count the committed moves and learn the committed settlements."""
        # Staged by invoice and learnt only here, so a batch retried after a
        # transient failure teaches the model each settlement once.
        await self.moves.flush()
        for example in self._examples.values():
            self.model.learn(example.inputs, example.late)
        self._examples.clear()

    def handlers(self) -> dict[str, Handler]:
        """The consumer's handlers: one reaction for every feature-changing event."""
        return {model.event_type: self.on_event for model in engine.UPDATES}

    async def on_event(self, ctx: Context, event: EventData) -> None:
        """Queue the event; its batch is applied just before the batch commits."""
        rejected = self._rejected.pop(ctx.envelope.id, None)
        if rejected is not None:
            # Raised from the handler, the loop dead-letters the event.
            raise rejected
        batch, new = deferred.kept(ctx.session, _BATCH, list)
        if new:
            outbox = ctx.outbox
            deferred.before_commit(
                ctx.session, lambda: self._apply_batch(ctx.session, outbox, batch)
            )
        batch.append(
            _Pending(event, ctx.envelope, ctx.clock.now(), current_traceparent())
        )

    async def on_due_timers(
        self, session: AsyncSession, outbox: Outbox, now: datetime, limit: int
    ) -> int:
        """Re-evaluate the customers whose invoices fell due; return how many."""
        due = await repository.due_customers(session, now, limit)
        work = await self._lock(session, outbox, due, skip_locked=True)
        # Those the consumer holds now are left for the next round.
        customers = await repository.take_due_timers(session, work.states, now)
        for customer_id in customers:
            state = work.state(customer_id)
            assessments = engine.reassess(state, as_of=now, model=self.model)
            work.changes.save_state(state, now)
            work.changes.sync_timers(customer_id, timers(state, now, work.tenure_marks))
            self._publish_risk(work, state, assessments, now, None)
            self._decide(work, state, now)
        await self._finish(session, work)
        return len(customers)

    async def rescore_batch(
        self,
        session: AsyncSession,
        outbox: Outbox,
        activation: Activation,
        *,
        now: datetime,
        limit: int,
    ) -> bool:
        """Re-score the next page of customers for ``activation``; True when done."""
        definition = await self.cache.get(session, activation.definition_version)
        assert definition is not None, "an activation names a stored definition"
        page = await repository.lock_page(session, activation.cursor, limit)
        work = Work(
            states={state.customer_id: state for state, _ in page},
            memberships={s.customer_id: m for s, m in page if m is not None},
            definition=definition,
            changes=Changes(outbox),
        )
        moved = sum(self._decide(work, state, now) for state, _ in page)
        if marks := definition.tenure_marks:
            # The new rules may read the tenure: each customer needs a timer for
            # the next mark (set again from here on whenever its timers are).
            for state, _ in page:
                wanted = timers(state, now, marks)
                work.changes.sync_timers(state.customer_id, wanted)
        await self._finish(session, work)
        done = len(page) < limit
        await definitions.advance_activation(
            session,
            activation,
            cursor=page[-1][0].customer_id if page else activation.cursor,
            processed=len(page),
            moved=moved,
            finished_at=now if done else None,
        )
        return done

    async def _apply_batch(
        self, session: AsyncSession, outbox: Outbox, batch: list[_Pending]
    ) -> None:
        work = await self._lock(session, outbox, {p.event.customer_id for p in batch})
        for pending in batch:
            try:
                self._react(work, pending)
            except Exception as exc:
                if is_transient(exc):
                    raise
                raise self._reject(pending, exc) from exc
        await self._finish(session, work)

    def _reject(self, pending: _Pending, error: Exception) -> _EventRejectedError:
        # The shared loop dead-letters only what a handler raises, and the handler
        # has returned by now: remember the failure and fail the batch, so that the
        # retry raises it from the handler and the rest of the batch goes on.
        if len(self._rejected) >= _MAX_REJECTED:
            self._rejected.pop(next(iter(self._rejected)))
        self._rejected[pending.envelope.id] = error
        return _EventRejectedError(
            f"event {pending.envelope.id} ({pending.envelope.type}) for customer "
            f"{pending.event.customer_id} cannot be applied ({error!r}); retrying "
            "its batch to dead-letter it"
        )

    def _react(self, work: Work, pending: _Pending) -> None:
        event, now = pending.event, pending.now
        state = work.state(event.customer_id)
        timers_before = work.timers(state, now)
        applied = engine.apply(
            state,
            event,
            at=pending.envelope.time,
            as_of=now,
            model=self.model,
            defer_learning=True,
        )
        if applied.example is not None:
            work.examples[applied.example.invoice_id] = applied.example
        if not applied.changed:
            logger.debug(
                "event %s (%s) changed nothing for customer %s",
                pending.envelope.id,
                pending.envelope.type,
                event.customer_id,
            )
            return
        work.changes.save_state(state, now)
        work.changed(state.customer_id)
        if (wanted := work.timers(state, now)) != timers_before:
            work.changes.sync_timers(state.customer_id, wanted)
        self._publish_risk(work, state, applied.assessments, now, pending.trace_parent)
        self._decide(
            work,
            state,
            now,
            causation_id=pending.envelope.id,
            trace_parent=pending.trace_parent,
        )

    async def _lock(
        self,
        session: AsyncSession,
        outbox: Outbox,
        customer_ids: Collection[str],
        *,
        skip_locked: bool = False,
    ) -> Work:
        states = await repository.lock_states(
            session, customer_ids, skip_locked=skip_locked
        )
        # The active version is read after the customers' rows are locked, so an
        # evaluation never uses a definition older than a finished activation's.
        memberships, active = await repository.memberships_and_active_version(
            session, customer_ids
        )
        definition = await self.cache.get(session, active) if active else None
        return Work(states, memberships, definition, Changes(outbox))

    async def _finish(self, session: AsyncSession, work: Work) -> None:
        await work.changes.write(session)
        deferred.after_commit(session, lambda: self._stage(work))

    def _stage(self, work: Work) -> None:
        self._examples.update(work.examples)
        for (customer_id, version), (from_, to) in work.moves.items():
            self.moves.stage(customer_id, version, from_, to)

    def _decide(
        self,
        work: Work,
        state: CustomerState,
        now: datetime,
        *,
        causation_id: str | None = None,
        trace_parent: str | None = None,
    ) -> bool:
        """Decide the customer's cohort under the work's definition; True if moved."""
        definition = work.definition
        if definition is None:
            return False
        customer_id = state.customer_id
        decision = definition.evaluate(features(state, now))
        result = decide(
            work.memberships.get(customer_id),
            decision,
            definition_version=definition.version,
            at=now,
        )
        if result is None:
            return False
        if isinstance(result, Membership):
            work.memberships[customer_id] = result
            work.changes.save_membership(customer_id, result)
            return False
        membership = result.membership
        work.memberships[customer_id] = membership
        work.changes.add_move(customer_id, result)
        changed = CohortChanged(
            customer_id=customer_id,
            from_cohort=result.from_cohort,
            to_cohort=membership.cohort,
            definition_version=membership.definition_version,
            rule=membership.rule,
            features=dict(result.features),
            version=membership.version,
            changed_at=membership.since,
        )
        work.publish(changed, now, causation_id, trace_parent)
        from_cohort = result.from_cohort or "none"
        work.moves[(customer_id, membership.version)] = (from_cohort, membership.cohort)
        logger.info(
            "customer %s moved from %s to %s by rule %s of definition %d",
            customer_id,
            result.from_cohort,
            membership.cohort,
            membership.rule,
            membership.definition_version,
        )
        return True

    def _publish_risk(
        self,
        work: Work,
        state: CustomerState,
        assessments: dict[str, Assessment],
        now: datetime,
        trace_parent: str | None,
    ) -> None:
        for invoice_id, assessment in assessments.items():
            risk = InvoiceRiskAssessed(
                customer_id=state.customer_id,
                invoice_id=invoice_id,
                late_probability=round(assessment.late_probability, 4),
                expected_pay_date=assessment.expected_pay_date,
                model_version=MODEL_VERSION,
                assessed_at=now,
            )
            work.publish(risk, now, None, trace_parent)
