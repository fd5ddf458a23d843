"""Segmentation's reactions: events, fired due-date timers and re-scores.

Each reaction runs inside the caller's transaction, locks the customer's state row
first (so the consumer, the timer loop and a re-score never decide for the same
customer at once), and publishes through the outbox in that same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_segmentation.adapters import definitions, repository
from arbor_segmentation.adapters.definitions import Activation, DefinitionCache
from arbor_segmentation.domain import engine
from arbor_segmentation.domain.features import CustomerState, features, timers
from arbor_segmentation.domain.membership import Membership, decide
from arbor_segmentation.domain.prediction import (
    MODEL_VERSION,
    Assessment,
    LatePaymentModel,
)
from arbor_segmentation.domain.rules import Definition
from arbor_shared.events import CohortChanged, EventData, InvoiceRiskAssessed
from arbor_shared.kafka.consumer import Context, Handler
from arbor_shared.kafka.outbox import Outbox

logger = logging.getLogger(__name__)


@dataclass
class MoveCounter:
    """Counts moves once their transaction commits, so retries never double count."""

    counter: Counter
    _pending: dict[tuple[str, int], tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def create(cls, registry: CollectorRegistry) -> MoveCounter:
        return cls(
            Counter(
                "cohort_moves_total",
                "Customers that moved from one cohort to another",
                ["from_cohort", "to_cohort"],
                namespace="arbor_segmentation",
                registry=registry,
            )
        )

    def stage(self, customer_id: str, version: int, from_: str, to: str) -> None:
        self._pending[(customer_id, version)] = (from_, to)

    async def flush(self) -> None:
        for from_cohort, to_cohort in self._pending.values():
            self.counter.labels(from_cohort=from_cohort, to_cohort=to_cohort).inc()
        self._pending.clear()

    def discard(self) -> None:
        self._pending.clear()


@dataclass
class Segmenter:
    """The service layer: keeps features, memberships and risk current."""

    model: LatePaymentModel
    cache: DefinitionCache
    moves: MoveCounter
    _examples: dict[str, engine.Example] = field(default_factory=dict)

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
        """Update the customer's features, re-assess its invoices, re-evaluate it."""
        now = ctx.clock.now()
        state = await repository.load_state(ctx.session, event.customer_id)
        timers_before = timers(state, now)
        applied = engine.apply(
            state,
            event,
            at=ctx.envelope.time,
            as_of=now,
            model=self.model,
            defer_learning=True,
        )
        if applied.example is not None:
            self._examples[applied.example.invoice_id] = applied.example
        if not applied.changed:
            logger.debug(
                "event %s (%s) changed nothing for customer %s",
                ctx.envelope.id,
                ctx.envelope.type,
                event.customer_id,
            )
            return
        await repository.save_state(ctx.session, state, now)
        if (wanted := timers(state, now)) != timers_before:
            await repository.sync_timers(ctx.session, state.customer_id, wanted)
        await self._publish_risk(
            ctx.session, ctx.outbox, state, applied.assessments, now
        )
        await self.reevaluate(
            ctx.session, ctx.outbox, state, now, causation_id=ctx.envelope.id
        )

    async def on_due_timers(
        self, session: AsyncSession, outbox: Outbox, now: datetime, limit: int
    ) -> int:
        """Re-evaluate the customers whose invoices fell due; return how many."""
        # TODO: rules over tenure_days also change with time alone; they move a
        # customer only when another event or timer re-evaluates it.
        customers = await repository.claim_due_timers(session, now, limit)
        for customer_id in customers:
            state = await repository.load_state(session, customer_id)
            assessments = engine.reassess(state, as_of=now, model=self.model)
            await repository.save_state(session, state, now)
            await repository.sync_timers(session, customer_id, timers(state, now))
            await self._publish_risk(session, outbox, state, assessments, now)
            await self.reevaluate(session, outbox, state, now)
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
        moved = 0
        for state, current in page:
            moved += await self._decide(
                session, outbox, state, now, definition, current
            )
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

    async def reevaluate(
        self,
        session: AsyncSession,
        outbox: Outbox,
        state: CustomerState,
        now: datetime,
        *,
        causation_id: str | None = None,
    ) -> bool:
        """Decide the customer's cohort under the active definition; True if moved."""
        # The active version is read after the customer's row is locked, so an
        # evaluation never uses a definition older than a finished activation's.
        current, active = await repository.membership_and_active_version(
            session, state.customer_id
        )
        definition = await self.cache.get(session, active) if active else None
        if definition is None:
            return False
        return await self._decide(
            session, outbox, state, now, definition, current, causation_id
        )

    async def _decide(
        self,
        session: AsyncSession,
        outbox: Outbox,
        state: CustomerState,
        now: datetime,
        definition: Definition,
        current: Membership | None,
        causation_id: str | None = None,
    ) -> bool:
        customer_id = state.customer_id
        decision = definition.evaluate(features(state, now))
        result = decide(
            current, decision, definition_version=definition.version, at=now
        )
        if result is None:
            return False
        if isinstance(result, Membership):
            await repository.save_membership(session, customer_id, result)
            return False
        await repository.add_move(session, customer_id, result)
        membership = result.membership
        await outbox.publish(
            session,
            CohortChanged(
                customer_id=customer_id,
                from_cohort=result.from_cohort,
                to_cohort=membership.cohort,
                definition_version=membership.definition_version,
                rule=membership.rule,
                features=dict(result.features),
                version=membership.version,
                changed_at=membership.since,
            ),
            causation_id=causation_id,
        )
        self.moves.stage(
            customer_id,
            membership.version,
            result.from_cohort or "none",
            membership.cohort,
        )
        logger.info(
            "customer %s moved from %s to %s by rule %s of definition %d",
            customer_id,
            result.from_cohort,
            membership.cohort,
            membership.rule,
            membership.definition_version,
        )
        return True

    async def _publish_risk(
        self,
        session: AsyncSession,
        outbox: Outbox,
        state: CustomerState,
        assessments: dict[str, Assessment],
        now: datetime,
    ) -> None:
        for invoice_id, assessment in assessments.items():
            await outbox.publish(
                session,
                InvoiceRiskAssessed(
                    customer_id=state.customer_id,
                    invoice_id=invoice_id,
                    late_probability=round(assessment.late_probability, 4),
                    expected_pay_date=assessment.expected_pay_date,
                    model_version=MODEL_VERSION,
                    assessed_at=now,
                ),
            )
