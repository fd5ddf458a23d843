"""A transaction's writes, staged in memory and sent with one statement per table.

The consumer, the timer loop and re-scores decide for many customers in one
transaction. Writing each decision as it is made costs a round trip apiece; they
stage them here instead and :meth:`Changes.write` sends them at the end of the
transaction's work, still inside it, so they commit or roll back with it. Each
statement takes its rows as one JSON document (:mod:`arbor_shared.db.rows`); the
states are written into it by the state codec, in the same single call. They go
straight to the session's asyncpg connection (see
:mod:`~arbor_segmentation.adapters.driver`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from arbor_segmentation.adapters import driver
from arbor_segmentation.domain import codec
from arbor_segmentation.domain.features import CustomerState
from arbor_segmentation.domain.membership import Membership, Move
from arbor_shared.db.rows import as_json
from arbor_shared.events import EventData
from arbor_shared.events.envelope import Envelope
from arbor_shared.kafka.outbox import Outbox

_SAVE_STATES = (
    "INSERT INTO customer_features (customer_id, state, updated_at) "
    "SELECT r.customer_id, r.state, r.updated_at "
    "FROM jsonb_to_recordset(CAST($1 AS jsonb)) "
    "AS r(customer_id text, state jsonb, updated_at timestamptz) "
    "ON CONFLICT (customer_id) DO UPDATE "
    "SET state = excluded.state, updated_at = excluded.updated_at"
)
_DROP_TIMERS = (
    "DELETE FROM due_timers WHERE customer_id = ANY(CAST($1 AS text[])) "
    "AND NOT invoice_id = ANY(CAST($2 AS text[]))"
)
_SET_TIMERS = (
    "INSERT INTO due_timers (invoice_id, customer_id, fire_at) "
    "SELECT r.invoice_id, r.customer_id, r.fire_at "
    "FROM jsonb_to_recordset(CAST($1 AS jsonb)) "
    "AS r(invoice_id text, customer_id text, fire_at timestamptz) "
    "ON CONFLICT (invoice_id) DO UPDATE SET fire_at = excluded.fire_at"
)
_CLOSE_INTERVALS = (
    "UPDATE membership_history AS h SET valid_to = r.valid_to "
    "FROM jsonb_to_recordset(CAST($1 AS jsonb)) "
    "AS r(customer_id text, valid_to timestamptz) "
    "WHERE h.customer_id = r.customer_id AND h.valid_to IS NULL"
)
_OPEN_INTERVALS = (
    "INSERT INTO membership_history (customer_id, version, from_cohort, to_cohort, "
    "definition_version, rule, features, valid_from, valid_to) "
    "SELECT r.customer_id, r.version, r.from_cohort, r.to_cohort, "
    "r.definition_version, r.rule, r.features, r.valid_from, r.valid_to "
    "FROM jsonb_to_recordset(CAST($1 AS jsonb)) AS r(customer_id text, "
    "version int, from_cohort text, to_cohort text, definition_version int, "
    "rule text, features jsonb, valid_from timestamptz, valid_to timestamptz)"
)
_SAVE_MEMBERSHIPS = (
    "INSERT INTO memberships (customer_id, cohort, definition_version, rule, "
    "version, since) SELECT r.customer_id, r.cohort, r.definition_version, "
    "r.rule, r.version, r.since FROM jsonb_to_recordset(CAST($1 AS jsonb)) "
    "AS r(customer_id text, cohort text, definition_version int, rule text, "
    "version int, since timestamptz) ON CONFLICT (customer_id) DO UPDATE SET "
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
            "features": move.features,
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
        connection = await driver.connection(session)
        if self.states:
            await connection.execute(_SAVE_STATES, self._state_rows())
        await self._write_timers(connection)
        if self._closes:
            closes = [
                {"customer_id": customer_id, "valid_to": at}
                for customer_id, at in self._closes.items()
            ]
            await connection.execute(_CLOSE_INTERVALS, as_json(closes))
        if self._intervals:
            await connection.execute(_OPEN_INTERVALS, as_json(self._intervals))
        if self.memberships:
            await connection.execute(_SAVE_MEMBERSHIPS, self._membership_rows())
        await self.outbox.publish_many(session, self.events)

    def _state_rows(self) -> str:
        rows = [
            {"customer_id": customer_id, "state": state, "updated_at": at}
            for customer_id, (state, at) in self.states.items()
        ]
        return codec.dumps_holding_states(rows).decode()

    async def _write_timers(self, connection: Any) -> None:
        if not self.timers:
            return
        # Keys are unique per customer; a key claimed by two customers goes to the
        # last, as one upsert after another would leave it.
        rows = {
            key: {"invoice_id": key, "customer_id": customer_id, "fire_at": at}
            for customer_id, wanted in self.timers.items()
            for key, at in wanted.items()
        }
        await connection.execute(_DROP_TIMERS, list(self.timers), list(rows))
        if rows:
            await connection.execute(_SET_TIMERS, as_json(list(rows.values())))

    def _membership_rows(self) -> str:
        rows = [
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
        return as_json(rows)
