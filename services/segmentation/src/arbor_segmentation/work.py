"""One transaction's working set: the customers it holds and what it decided.

The consumer's batch, a round of due timers and a page of a re-score each lock their
customers' states once, decide for every customer in memory, and leave here what
they want written and published, for :class:`Changes` to send in one go.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from arbor_segmentation.adapters.changes import Changes
from arbor_segmentation.domain import engine
from arbor_segmentation.domain.features import (
    CustomerState,
    still_due,
    timer_instants,
)
from arbor_segmentation.domain.membership import Membership
from arbor_segmentation.domain.rules import Definition
from arbor_shared.events import EventData


@dataclass
class Work:
    """One transaction's customers and everything decided for them so far."""

    states: dict[str, CustomerState]
    memberships: dict[str, Membership]
    definition: Definition | None
    changes: Changes
    examples: dict[str, engine.Example] = field(default_factory=dict)
    moves: dict[tuple[str, int], tuple[str, str]] = field(default_factory=dict)
    _instants: dict[str, tuple[date, dict[str, datetime]]] = field(default_factory=dict)

    def state(self, customer_id: str) -> CustomerState:
        """The customer's state; a fresh one if it is unknown."""
        found = self.states.get(customer_id)
        if found is None:
            found = self.states[customer_id] = CustomerState(customer_id)
        return found

    def timers(self, state: CustomerState, now: datetime) -> dict[str, datetime]:
        """The state's :func:`~features.timers`, reusing the instants last found."""
        # Timer instants change only with the state or the customer's day, and an
        # event that changes the state calls :meth:`changed`.
        today = state.local_date(now)
        known = self._instants.get(state.customer_id)
        if known is None or known[0] != today:
            known = (today, timer_instants(state, today, self.tenure_marks))
            self._instants[state.customer_id] = known
        return still_due(known[1], now)

    @property
    def tenure_marks(self) -> tuple[int, ...]:
        """The tenures at which the definition in force may move a customer."""
        return self.definition.tenure_marks if self.definition else ()

    def changed(self, customer_id: str) -> None:
        """Forget what was derived from the customer's state before it changed."""
        self._instants.pop(customer_id, None)

    def publish(
        self,
        data: EventData,
        now: datetime,
        causation_id: str | None,
        trace_parent: str | None,
    ) -> None:
        """Stage ``data`` for the outbox with its envelope, after all before it."""
        # Published after the consumer's span has closed: the event's own trace is
        # passed on as the parent.
        envelope = self.changes.outbox.envelope(
            data, causation_id=causation_id, time=now, trace_parent=trace_parent
        )
        self.changes.publish(envelope, data)
