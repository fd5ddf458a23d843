"""Ingest's one reaction: accept canonical events and keep the ledger in step.

Every source (the JSON API, provider webhooks, CSV imports) ends here, inside the
caller's transaction, so an event, its ledger effects and the facts they publish are
committed together or not at all (RELIABILITY P1).
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from arbor_ingest.adapters import intake_store, ledger_store
from arbor_ingest.adapters.intake_store import KeyOwner
from arbor_ingest.domain import identities
from arbor_ingest.domain.errors import EventRejectedError
from arbor_ingest.domain.ledger import CustomerLedger
from arbor_shared.events import ClockAdvanced, Envelope, EventData
from arbor_shared.failpoints import failpoint
from arbor_shared.kafka.outbox import Outbox
from arbor_shared.telemetry import current_traceparent

logger = logging.getLogger(__name__)

Status = Literal["accepted", "duplicate", "rejected"]


@dataclass(frozen=True)
class Acceptance:
    """What became of one submitted event.

    ``rejected`` carries ``field`` and ``reason``; the other items of a batch are
    unaffected by it.
    """

    event_id: str
    status: Status
    field: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class _Item:
    index: int
    event_id: str
    data: EventData
    value: bytes
    """The data as JSON: hashed for the digest, and the record's value."""
    digest: str
    keys: list[tuple[identities.BusinessKey, str]]
    """The business keys the data books, with the field carrying each."""
    context: contextvars.Context | None = None


async def accept_many(
    session: AsyncSession,
    outbox: Outbox,
    items: Sequence[tuple[str, EventData]],
    *,
    publisher: str,
    contexts: Sequence[contextvars.Context] | None = None,
) -> list[Acceptance]:
    """Accept canonical events (event id, data) in the caller's transaction.

    An event id seen before with the same data, or the same business facts under a
    new event id, is a duplicate; anything else the ledger refuses is rejected with
    the field and the reason. Nothing is durable until the caller commits.
    ``contexts``, one per item, are the contexts the items were submitted in when
    that is not the caller's: each item's envelopes carry its own request's trace.
    """
    batch = [
        _item(n, eid, data, contexts[n] if contexts else None)
        for n, (eid, data) in enumerate(items)
    ]
    results: dict[int, Acceptance] = {}
    fresh = await _claim_event_ids(session, batch, results)

    keys = await _known_keys(session, fresh)
    known = set(keys)
    named = {i for item in fresh for i, _ in identities.invoices_named(item.data)}
    owners = await ledger_store.owners(session, named)
    ledgers = await ledger_store.get_many(
        session,
        {i.data.customer_id for i in fresh if not isinstance(i.data, ClockAdvanced)},
        invoices=named,
        funds={k for item in fresh for k in identities.funds_named(item.data)},
    )
    staged: list[tuple[Envelope, EventData, bytes]] = []
    for item in fresh:
        apply = functools.partial(_apply, item, keys, owners, ledgers, outbox, staged)
        results[item.index] = item.context.run(apply) if item.context else apply()
    _share_rejections(batch, results)

    await _forget_rejected(session, results.values())
    await intake_store.record(
        session, {k: v for k, v in keys.items() if k not in known}
    )
    await outbox.publish_encoded(session, staged)
    await ledger_store.save(session, ledgers.values())
    failpoint("ingest_before_commit")
    _log_outcome(publisher, results.values())
    return [results[n] for n in range(len(batch))]


def _item(
    index: int, event_id: str, data: EventData, context: contextvars.Context | None
) -> _Item:
    value = data.model_dump_json().encode()
    digest = hashlib.sha256(data.event_type.encode() + b"\n" + value).hexdigest()
    keys = identities.business_keys(data)
    return _Item(index, event_id, data, value, digest, keys, context)


async def _claim_event_ids(
    session: AsyncSession, batch: list[_Item], results: dict[int, Acceptance]
) -> list[_Item]:
    """Claim each event id once; an id claimed before is a duplicate or a conflict."""
    first: dict[str, _Item] = {}
    for item in batch:
        earlier = first.setdefault(item.event_id, item)
        if earlier is not item:
            results[item.index] = _repeat(item, earlier.digest, "in this batch")
    if not first:
        return []
    claimed = await intake_store.claim(
        session, [_claim_row(item) for _, item in sorted(first.items())]
    )
    if len(claimed) < len(first):
        stored = await intake_store.digests(session, set(first) - claimed)
        for event_id, digest in stored.items():
            item = first[event_id]
            results[item.index] = _repeat(item, digest, "before")
    return [item for item in first.values() if item.event_id in claimed]


def _share_rejections(batch: list[_Item], results: dict[int, Acceptance]) -> None:
    # A repeat inside the batch was answered "duplicate" of its first occurrence;
    # when that one was refused after all, nothing was stored and the repeat is
    # refused for the same reason.
    first: dict[str, Acceptance] = {}
    for item in batch:
        result = first.setdefault(item.event_id, results[item.index])
        if result.status == "rejected" and results[item.index].status == "duplicate":
            results[item.index] = result


def _claim_row(item: _Item) -> tuple[str, str, str, str]:
    return item.event_id, item.data.event_type, item.data.customer_id, item.digest


def _repeat(item: _Item, digest: str, when: str) -> Acceptance:
    if digest == item.digest:
        return Acceptance(item.event_id, "duplicate")
    return Acceptance(
        item.event_id,
        "rejected",
        "id",
        f"event id {item.event_id} was accepted {when} with different data",
    )


KeyMap = dict[tuple[str, str], KeyOwner]
"""(kind, key) to (customer id, event id, data digest), known or added."""


async def _known_keys(session: AsyncSession, fresh: list[_Item]) -> KeyMap:
    wanted = {k for item in fresh for k, _ in item.keys}
    return await intake_store.lock_and_get(session, wanted)


def _apply(
    item: _Item,
    keys: KeyMap,
    owners: dict[str, str],
    ledgers: dict[str, CustomerLedger],
    outbox: Outbox,
    staged: list[tuple[Envelope, EventData, bytes]],
) -> Acceptance:
    data = item.data
    try:
        if _booked_before(item, keys):
            return Acceptance(item.event_id, "duplicate")
        identities.check_owners(data, owners)
        facts = (
            []
            if isinstance(data, ClockAdvanced)  # simulated time: no ledger effect
            else ledgers[data.customer_id].apply(data, event_id=item.event_id)
        )
    except EventRejectedError as exc:
        return Acceptance(item.event_id, "rejected", exc.field, exc.reason)

    for key, _field in item.keys:
        keys[key] = (data.customer_id, item.event_id, item.digest)
    owners.update(dict.fromkeys(identities.invoices_issued(data), data.customer_id))
    _stage(item, facts, outbox, staged)
    return Acceptance(item.event_id, "accepted")


def _stage(
    item: _Item,
    facts: list[EventData],
    outbox: Outbox,
    staged: list[tuple[Envelope, EventData, bytes]],
) -> None:
    # An event and its facts belong to one trace: it is captured once, not once
    # per envelope. The event's value was encoded for its digest already.
    trace_parent = current_traceparent()
    event = outbox.envelope(
        item.data, event_id=item.event_id, trace_parent=trace_parent
    )
    staged.append((event, item.data, item.value))
    for fact in facts:
        # Staged at the same moment as their cause: no clock read per fact.
        envelope = outbox.envelope(
            fact, causation_id=item.event_id, time=event.time, trace_parent=trace_parent
        )
        staged.append((envelope, fact, fact.model_dump_json().encode()))


def _booked_before(item: _Item, keys: KeyMap) -> bool:
    """True when the same facts were booked under another event id."""
    for key, field in item.keys:
        known = keys.get(key)
        if known is None:
            continue
        _customer, event_id, digest = known
        if digest == item.digest:
            return True
        raise EventRejectedError(
            field,
            f"{key[0].replace('_', ' ')} {key[1]} was already booked by event "
            f"{event_id} with different data",
        )
    return False


async def _forget_rejected(
    session: AsyncSession, results: Iterable[Acceptance]
) -> None:
    # A rejected event leaves no trace, so the publisher can fix it and send it again
    # under the same id.
    rejected = {
        r.event_id for r in results if r.status == "rejected" and r.field != "id"
    }
    await intake_store.forget(session, rejected)


def _log_outcome(publisher: str, results: Iterable[Acceptance]) -> None:
    counts = Counter(r.status for r in results)
    logger.info(
        "publisher %s: %d accepted, %d duplicate, %d rejected",
        publisher,
        counts["accepted"],
        counts["duplicate"],
        counts["rejected"],
    )
