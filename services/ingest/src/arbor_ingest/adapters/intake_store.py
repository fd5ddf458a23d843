"""The event ids and business keys ingest has accepted, one statement per batch."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_ingest.adapters.sql import driver
from arbor_shared.db.rows import as_json

BusinessKey = tuple[str, str]
KeyOwner = tuple[str, str, str]
"""Customer id, event id and data digest of the event that booked a key."""

# Through the session, not the driver: a claim opens every acceptance, and the
# session sends its BEGIN with it instead of as a statement of its own.
# Rows travel as one JSON array of arrays (see arbor_shared.db.rows).
_CLAIM = sa.text(
    "INSERT INTO accepted_events (event_id, event_type, customer_id, body_sha256) "
    "SELECT r->>0, r->>1, r->>2, r->>3 FROM json_array_elements(CAST(:rows AS json)) "
    "AS r ON CONFLICT DO NOTHING RETURNING event_id"
)
_STORED = (
    "SELECT event_id, body_sha256 FROM accepted_events WHERE event_id = ANY($1::text[])"
)
_FORGET = "DELETE FROM accepted_events WHERE event_id = ANY($1::text[])"
# The first of PostgreSQL's two-int advisory lock keys: business keys apart from
# every other advisory lock (the single-bigint keys are another space).
_BUSINESS_KEY_LOCKS = 7301
_LOCK_KEYS = (
    "SELECT pg_advisory_xact_lock($1::int, hashtext(w->>0 || chr(31) || (w->>1))) "
    "FROM json_array_elements($2::json) AS w"
)
_KNOWN_KEYS = (
    "SELECT b.kind, b.key, b.customer_id, b.event_id, b.data_sha256 "
    "FROM business_keys AS b JOIN json_array_elements($1::json) AS w "
    "ON b.kind = w->>0 AND b.key = w->>1"
)
_RECORD_KEYS = (
    "INSERT INTO business_keys (kind, key, customer_id, event_id, data_sha256) "
    "SELECT r->>0, r->>1, r->>2, r->>3, r->>4 FROM json_array_elements($1::json) "
    "AS r ON CONFLICT DO NOTHING"
)


async def claim(
    session: AsyncSession, rows: Sequence[tuple[str, str, str, str]]
) -> set[str]:
    """Record (event id, type, customer id, digest) rows; return the ids now claimed."""
    claimed = await session.scalars(_CLAIM, {"rows": as_json(rows)})
    return set(claimed)


async def digests(session: AsyncSession, event_ids: Collection[str]) -> dict[str, str]:
    """The data digest stored with each of ``event_ids`` that was accepted before."""
    connection = await driver(session)
    return dict(await connection.fetch(_STORED, sorted(event_ids)))


async def forget(session: AsyncSession, event_ids: Collection[str]) -> None:
    if event_ids:
        connection = await driver(session)
        await connection.execute(_FORGET, sorted(event_ids))


async def lock_and_get(
    session: AsyncSession, keys: Collection[BusinessKey]
) -> dict[BusinessKey, KeyOwner]:
    """Lock ``keys`` until commit, then read those booked already."""
    if not keys:
        return {}
    ordered = as_json(sorted(keys))
    connection = await driver(session)
    # Two customers booking one provider payment id at once would both read it as
    # unknown and both book it; the lock makes the second wait for the first's
    # commit and then read its key. Sorted, so two batches never deadlock. The read
    # is a statement of its own: its snapshot must be taken after the wait.
    await connection.execute(_LOCK_KEYS, _BUSINESS_KEY_LOCKS, ordered)
    rows = await connection.fetch(_KNOWN_KEYS, ordered)
    return {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows}


async def record(session: AsyncSession, keys: dict[BusinessKey, KeyOwner]) -> None:
    """Book ``keys`` for the events that carried them."""
    if not keys:
        return
    rows = [(*key, *owner) for key, owner in sorted(keys.items())]
    connection = await driver(session)
    await connection.execute(_RECORD_KEYS, as_json(rows))
