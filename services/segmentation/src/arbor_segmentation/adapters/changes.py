"""A transaction's writes, staged in memory and sent with one statement per table.

The consumer, the timer loop and re-scores decide for many customers in one
transaction. Writing each decision as it is made costs a round trip apiece; they
stage them here instead and :meth:`Changes.write` sends them at the end of the
transaction's work, still inside it, so they commit or roll back with it. Each
statement takes one array per column (``unnest``) and has the same text whatever
the batch size, so it stays prepared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_segmentation.domain import codec
from arbor_segmentation.domain.features import CustomerState
from arbor_segmentation.domain.membership import Membership, Move
from arbor_shared.events import EventData
from arbor_shared.events.envelope import Envelope
from arbor_shared.kafka.outbox import Outbox

_SAVE_STATES = sa.text(
    "INSERT INTO customer_features (customer_id, state, updated_at) "
    "SELECT u.customer_id, CAST(u.state AS jsonb), u.updated_at FROM unnest("
    "CAST(:customer_id AS text[]), CAST(:state AS text[]), "
    "CAST(:updated_at AS timestamptz[])) AS u(customer_id, state, updated_at) "
    "ON CONFLICT (customer_id) DO UPDATE "
    "SET state = excluded.state, updated_at = excluded.updated_at"
)
_DROP_TIMERS = sa.text(
    "DELETE FROM due_timers WHERE customer_id = ANY(CAST(:customer_id AS text[])) "
    "AND NOT invoice_id = ANY(CAST(:keep AS text[]))"
)
_SET_TIMERS = sa.text(
    "INSERT INTO due_timers (invoice_id, customer_id, fire_at) "
    "SELECT * FROM unnest(CAST(:invoice_id AS text[]), "
    "CAST(:customer_id AS text[]), CAST(:fire_at AS timestamptz[])) "
    "ON CONFLICT (invoice_id) DO UPDATE SET fire_at = excluded.fire_at"
)
_CLOSE_INTERVALS = sa.text(
    "UPDATE membership_history AS h SET valid_to = u.valid_to FROM unnest("
    "CAST(:customer_id AS text[]), CAST(:valid_to AS timestamptz[])) "
    "AS u(customer_id, valid_to) "
    "WHERE h.customer_id = u.customer_id AND h.valid_to IS NULL"
)
_OPEN_INTERVALS = sa.text(
    "INSERT INTO membership_history (customer_id, version, from_cohort, to_cohort, "
    "definition_version, rule, features, valid_from, valid_to) "
    "SELECT u.customer_id, u.version, u.from_cohort, u.to_cohort, "
    "u.definition_version, u.rule, CAST(u.features AS jsonb), u.valid_from, "
    "u.valid_to FROM unnest(CAST(:customer_id AS text[]), CAST(:version AS int[]), "
    "CAST(:from_cohort AS text[]), CAST(:to_cohort AS text[]), "
    "CAST(:definition_version AS int[]), CAST(:rule AS text[]), "
    "CAST(:features AS text[]), CAST(:valid_from AS timestamptz[]), "
    "CAST(:valid_to AS timestamptz[])) AS u(customer_id, version, from_cohort, "
    "to_cohort, definition_version, rule, features, valid_from, valid_to)"
)
_SAVE_MEMBERSHIPS = sa.text(
    "INSERT INTO memberships (customer_id, cohort, definition_version, rule, "
    "version, since) SELECT * FROM unnest(CAST(:customer_id AS text[]), "
    "CAST(:cohort AS text[]), CAST(:definition_version AS int[]), "
    "CAST(:rule AS text[]), CAST(:version AS int[]), "
    "CAST(:since AS timestamptz[])) ON CONFLICT (customer_id) DO UPDATE SET "
    "cohort = excluded.cohort, definition_version = excluded.definition_version, "
    "rule = excluded.rule, version = excluded.version, since = excluded.since"
)


@dataclass
class Changes:
    """What one transaction will write, newest value per customer."""

    outbox: Outbox
    states: dict[str, tuple[CustomerState, datetime]] = field(default_factory=dict)
    timers: dict[str, dict[str, datetime]] = field(default_factory=dict)
    memberships: dict[str, Membership] = field(default_factory=dict)
    events: list[tuple[Envelope, EventData]] = field(default_factory=list)
    _closes: dict[str, datetime] = field(default_factory=dict)
    _intervals: list[dict[str, Any]] = field(default_factory=list)
    _open: dict[str, dict[str, Any]] = field(default_factory=dict)

    def save_state(self, state: CustomerState, at: datetime) -> None:
        """Store ``state`` as it is when the transaction's work ends."""
        self.states[state.customer_id] = (state, at)

    def sync_timers(self, customer_id: str, wanted: dict[str, datetime]) -> None:
        """Make the customer's timers exactly ``wanted`` (key to firing instant)."""
        self.timers[customer_id] = dict(wanted)

    def save_membership(self, customer_id: str, membership: Membership) -> None:
        self.memberships[customer_id] = membership

    def add_move(self, customer_id: str, move: Move) -> None:
        """Close the open history interval, open the next one, set the membership."""
        membership = move.membership
        opened_here = self._open.get(customer_id)
        if opened_here is not None:
            opened_here["valid_to"] = membership.since
        else:
            self._closes[customer_id] = membership.since
        interval = {
            "customer_id": customer_id,
            "version": membership.version,
            "from_cohort": move.from_cohort,
            "to_cohort": membership.cohort,
            "definition_version": membership.definition_version,
            "rule": membership.rule,
            "features": orjson.dumps(move.features).decode(),
            "valid_from": membership.since,
            "valid_to": None,
        }
        self._intervals.append(interval)
        self._open[customer_id] = interval
        self.memberships[customer_id] = membership

    def publish(self, envelope: Envelope, data: EventData) -> None:
        """Stage ``data`` for the outbox, after everything staged before it."""
        self.events.append((envelope, data))

    async def write(self, session: AsyncSession) -> None:
        """Send every staged write, one statement per table."""
        await self._write_states(session)
        await self._write_timers(session)
        await self._write_history(session)
        if self.memberships:
            await session.execute(_SAVE_MEMBERSHIPS, _columns(self._membership_rows()))
        await self.outbox.publish_many(session, self.events)

    async def _write_states(self, session: AsyncSession) -> None:
        if not self.states:
            return
        rows = [
            {
                "customer_id": customer_id,
                "state": codec.dumps(state).decode(),
                "updated_at": at,
            }
            for customer_id, (state, at) in self.states.items()
        ]
        await session.execute(_SAVE_STATES, _columns(rows))

    async def _write_timers(self, session: AsyncSession) -> None:
        if not self.timers:
            return
        # Keys are unique per customer; a key claimed by two customers goes to the
        # last, as one upsert after another would leave it.
        rows = {
            key: {"invoice_id": key, "customer_id": customer_id, "fire_at": at}
            for customer_id, wanted in self.timers.items()
            for key, at in wanted.items()
        }
        await session.execute(
            _DROP_TIMERS, {"customer_id": list(self.timers), "keep": list(rows)}
        )
        if rows:
            await session.execute(_SET_TIMERS, _columns(list(rows.values())))

    async def _write_history(self, session: AsyncSession) -> None:
        if self._closes:
            await session.execute(
                _CLOSE_INTERVALS,
                {
                    "customer_id": list(self._closes),
                    "valid_to": list(self._closes.values()),
                },
            )
        if self._intervals:
            await session.execute(_OPEN_INTERVALS, _columns(self._intervals))

    def _membership_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "customer_id": customer_id,
                "cohort": m.cohort,
                "definition_version": m.definition_version,
                "rule": m.rule,
                "version": m.version,
                "since": m.since,
            }
            for customer_id, m in self.memberships.items()
        ]


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in rows[0]}
