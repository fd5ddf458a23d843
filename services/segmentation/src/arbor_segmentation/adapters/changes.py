"""A transaction's writes, staged in memory and sent with one statement per table.

The consumer, the timer loop and re-scores decide for many customers in one
transaction. Writing each decision as it is made costs a round trip apiece; they
stage them here instead and :meth:`Changes.write` sends them at the end of the
transaction's work, still inside it, so they commit or roll back with it. Each
statement takes one array per column (``unnest``) and has the same text whatever
the batch size, so it stays prepared; they go straight to the session's asyncpg
connection (see :mod:`~arbor_segmentation.adapters.driver`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_segmentation.adapters import driver
from arbor_segmentation.domain import codec
from arbor_segmentation.domain.features import CustomerState
from arbor_segmentation.domain.membership import Membership, Move
from arbor_shared.events import EventData
from arbor_shared.events.envelope import Envelope
from arbor_shared.kafka.outbox import Outbox

_SAVE_STATES = (
    "INSERT INTO customer_features (customer_id, state, updated_at) "
    "SELECT u.customer_id, CAST(u.state AS jsonb), u.updated_at FROM unnest("
    "CAST($1 AS text[]), CAST($2 AS text[]), "
    "CAST($3 AS timestamptz[])) AS u(customer_id, state, updated_at) "
    "ON CONFLICT (customer_id) DO UPDATE "
    "SET state = excluded.state, updated_at = excluded.updated_at"
)
_DROP_TIMERS = (
    "DELETE FROM due_timers WHERE customer_id = ANY(CAST($1 AS text[])) "
    "AND NOT invoice_id = ANY(CAST($2 AS text[]))"
)
_SET_TIMERS = (
    "INSERT INTO due_timers (invoice_id, customer_id, fire_at) "
    "SELECT * FROM unnest(CAST($1 AS text[]), "
    "CAST($2 AS text[]), CAST($3 AS timestamptz[])) "
    "ON CONFLICT (invoice_id) DO UPDATE SET fire_at = excluded.fire_at"
)
_CLOSE_INTERVALS = (
    "UPDATE membership_history AS h SET valid_to = u.valid_to FROM unnest("
    "CAST($1 AS text[]), CAST($2 AS timestamptz[])) "
    "AS u(customer_id, valid_to) "
    "WHERE h.customer_id = u.customer_id AND h.valid_to IS NULL"
)
_OPEN_INTERVALS = (
    "INSERT INTO membership_history (customer_id, version, from_cohort, to_cohort, "
    "definition_version, rule, features, valid_from, valid_to) "
    "SELECT u.customer_id, u.version, u.from_cohort, u.to_cohort, "
    "u.definition_version, u.rule, CAST(u.features AS jsonb), u.valid_from, "
    "u.valid_to FROM unnest(CAST($1 AS text[]), CAST($2 AS int[]), "
    "CAST($3 AS text[]), CAST($4 AS text[]), "
    "CAST($5 AS int[]), CAST($6 AS text[]), "
    "CAST($7 AS text[]), CAST($8 AS timestamptz[]), "
    "CAST($9 AS timestamptz[])) AS u(customer_id, version, from_cohort, "
    "to_cohort, definition_version, rule, features, valid_from, valid_to)"
)
_SAVE_MEMBERSHIPS = (
    "INSERT INTO memberships (customer_id, cohort, definition_version, rule, "
    "version, since) SELECT * FROM unnest(CAST($1 AS text[]), "
    "CAST($2 AS text[]), CAST($3 AS int[]), "
    "CAST($4 AS text[]), CAST($5 AS int[]), "
    "CAST($6 AS timestamptz[])) ON CONFLICT (customer_id) DO UPDATE SET "
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
    _intervals: list[list[Any]] = field(default_factory=list)
    _open: dict[str, list[Any]] = field(default_factory=dict)

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
            opened_here[_VALID_TO] = membership.since
        else:
            self._closes[customer_id] = membership.since
        interval = [
            customer_id,
            membership.version,
            move.from_cohort,
            membership.cohort,
            membership.definition_version,
            membership.rule,
            orjson.dumps(move.features).decode(),
            membership.since,
            None,
        ]
        self._intervals.append(interval)
        self._open[customer_id] = interval
        self.memberships[customer_id] = membership

    def publish(self, envelope: Envelope, data: EventData) -> None:
        """Stage ``data`` for the outbox, after everything staged before it."""
        self.events.append((envelope, data))

    async def write(self, session: AsyncSession) -> None:
        """Send every staged write, one statement per table."""
        connection = await driver.connection(session)
        await self._write_states(connection)
        await self._write_timers(connection)
        if self._closes:
            await connection.execute(
                _CLOSE_INTERVALS, list(self._closes), list(self._closes.values())
            )
        if self._intervals:
            await connection.execute(_OPEN_INTERVALS, *_columns(self._intervals))
        if self.memberships:
            await connection.execute(_SAVE_MEMBERSHIPS, *self._membership_columns())
        await self.outbox.publish_many(session, self.events)

    async def _write_states(self, connection: Any) -> None:
        if not self.states:
            return
        rows = [
            (customer_id, codec.dumps(state).decode(), at)
            for customer_id, (state, at) in self.states.items()
        ]
        await connection.execute(_SAVE_STATES, *_columns(rows))

    async def _write_timers(self, connection: Any) -> None:
        if not self.timers:
            return
        # Keys are unique per customer; a key claimed by two customers goes to the
        # last, as one upsert after another would leave it.
        rows = {
            key: (key, customer_id, at)
            for customer_id, wanted in self.timers.items()
            for key, at in wanted.items()
        }
        await connection.execute(_DROP_TIMERS, list(self.timers), list(rows))
        if rows:
            await connection.execute(_SET_TIMERS, *_columns(list(rows.values())))

    def _membership_columns(self) -> list[list[Any]]:
        return _columns(
            [
                (c, m.cohort, m.definition_version, m.rule, m.version, m.since)
                for c, m in self.memberships.items()
            ]
        )


_VALID_TO = 8


def _columns(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)]
