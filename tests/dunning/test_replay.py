"""Replaying old history in event time: real Kafka, PostgreSQL and SMTP.

A replay of the topics carries no ``ClockAdvanced`` watermarks between the facts, so
the service's clock stays where it was while two years of invoices and payments
stream through; the only watermark is the present, at the end.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import Message

import sqlalchemy as sa

from arbor_dunning.adapters.tables import contacts, messaging, steps
from arbor_dunning.bootstrap import MIGRATIONS, create_app
from arbor_dunning.scheduler import Scheduler
from arbor_shared import topics
from arbor_shared.events import ClockAdvanced, EventData, InvoiceIssued
from arbor_shared.events.envelope import Envelope
from arbor_shared.runtime import ServiceRuntime
from tests.conftest import Namespace
from tests.dunning.conftest import balance, customer, dunning_settings, settled
from tests.dunning.receivers import smtp_server
from tests.support import eventually, header, migrate, produce, published, running

# Monday 30 November 2026, just after nine in Berlin (CET).
PRESENT = datetime(2026, 11, 30, 8, 0, 30, tzinfo=UTC)
TWO_YEARS_AGO = PRESENT - timedelta(days=2 * 365)

# What dunning publishes when it contacts or charges a customer.
CONTACTS_MADE = {
    "ReminderSent",
    "LateFeeAssessed",
    "IncentiveOffered",
    "EscalationRaised",
}

REPLAY_ORDER = (topics.CUSTOMERS, topics.INVOICES, topics.LEDGER, topics.CLOCK)

# (when it happened, what happened), in the order the ledger recorded it.
History = list[tuple[datetime, EventData]]
Record = tuple[bytes | None, bytes, list[tuple[str, bytes]]]


@dataclass
class Outcome:
    mails: list[Message]
    contacts: list[tuple[str, str, str]]
    steps: dict[str, dict[str, tuple[str, str | None]]]
    published: list[tuple[str, str | None]]


async def test_replayed_history_paid_late_sends_nothing_at_the_present(
    namespace: Namespace,
) -> None:
    """Old invoices settled after their reminders fell due are never contacted."""
    outcome = await _replay(namespace, _settled_history())

    assert outcome.mails == []
    assert outcome.contacts == []
    # Each was planned in event time and stopped by its settlement: no step done.
    assert set(outcome.steps) == {"inv-2024-11", "inv-2025-03", "inv-2025-10"}
    for invoice_id, states in outcome.steps.items():
        assert set(states.values()) == {("cancelled", "settled")}, invoice_id
    kinds = {kind for kind, _ in outcome.published}
    assert kinds.isdisjoint(CONTACTS_MADE), kinds


async def test_replayed_invoice_unpaid_at_the_present_gets_only_its_latest_step(
    namespace: Namespace,
) -> None:
    """The same replay with one invoice still owed at the present watermark.

    services/dunning/README.md, catch-up: "when several steps of one invoice are
    due at once, only the most recent is sent and the older ones are cancelled as
    `missed_during_outage` (`latest_only`, the default)."
    """
    # Due Friday 20 November: courtesy, due date and plan offer are all past.
    owed = _issued("inv-2026-11", date(2026, 11, 5), due=date(2026, 11, 20))
    history = [*_settled_history(), *_opened(owed)]

    outcome = await _replay(namespace, history)

    [mail] = outcome.mails
    assert mail["To"] == "cus-1@example.com"
    assert mail["Subject"] == (
        "Invoice N-inv-2026-11 is overdue: we can offer a payment plan"
    )
    assert outcome.contacts == [("inv-2026-11", "plan_offer", "sent")]
    assert outcome.steps["inv-2026-11"] == {
        "courtesy": ("cancelled", "missed_during_outage"),
        "due_today": ("cancelled", "missed_during_outage"),
        "plan_offer": ("done", None),
        "late_fee": ("planned", None),
        "escalation": ("planned", None),
    }
    for invoice_id in ("inv-2024-11", "inv-2025-03", "inv-2025-10"):
        states = outcome.steps[invoice_id]
        assert set(states.values()) == {("cancelled", "settled")}, invoice_id
    assert [s for kind, s in outcome.published if kind == "ReminderSent"] == [
        "plan_offer"
    ]


def _settled_history() -> History:
    """Three invoices from two years back, each paid after some of its steps."""
    history: History = [(TWO_YEARS_AGO, _customer())]
    # Paid 18 days late: after the plan offer and the late fee.
    history += _paid_late(date(2024, 11, 15), date(2024, 12, 2), [(18, 120_000)])
    # Paid in two parts, the last 42 days late: after the escalation.
    history += _paid_late(
        date(2025, 3, 3), date(2025, 3, 31), [(10, 50_000), (42, 70_000)]
    )
    # Paid 3 days late: after the due-date reminder.
    history += _paid_late(date(2025, 10, 1), date(2025, 10, 31), [(3, 120_000)])
    return history


def _paid_late(issued_on: date, due: date, payments: list[tuple[int, int]]) -> History:
    """The ledger's facts for an invoice paid in ``(days after due, amount)`` parts."""
    issued = _issued(f"inv-{issued_on:%Y-%m}", issued_on, due=due)
    facts = _opened(issued)
    paid = 0
    for days_late, amount in payments:
        at = _morning(due + timedelta(days=days_late))
        paid += amount
        status = "settled" if paid == issued.amount_minor else "open"
        moved = balance(issued, paid=paid, status=status)
        facts.append((at, moved.model_copy(update={"changed_at": at})))
    facts.append((at, settled(issued, at)))
    return facts


def _opened(issued: InvoiceIssued) -> History:
    """The issue and the ledger's first balance, both at the time of issue."""
    at = issued.issued_at
    opened = balance(issued).model_copy(
        update={"changed_at": at, "cause_event_type": "InvoiceIssued"}
    )
    return [(at, issued), (at, opened)]


def _customer() -> EventData:
    return customer().model_copy(update={"started_on": TWO_YEARS_AGO.date()})


def _issued(invoice_id: str, issued_on: date, *, due: date) -> InvoiceIssued:
    return InvoiceIssued(
        customer_id="cus-1",
        invoice_id=invoice_id,
        number=f"N-{invoice_id}",
        currency="EUR",
        amount_minor=120_000,
        issue_date=issued_on,
        due_date=due,
        issued_at=_morning(issued_on),
    )


def _morning(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=10)


async def _replay(namespace: Namespace, history: History) -> Outcome:
    """Run dunning on the event clock through ``history``, then the present."""
    with smtp_server() as (mailbox, port):
        settings = dunning_settings(
            namespace,
            smtp_port=port,
            consumers_enabled=True,
            recovery_lease_seconds=60,
        )
        await migrate(MIGRATIONS, settings)
        app = create_app(settings)
        async with running(app):
            runtime: ServiceRuntime = app.state.runtime
            scheduler: Scheduler = app.state.scheduler
            await _consume(namespace, runtime, scheduler, history)

            watermark: History = [(PRESENT, ClockAdvanced(now=PRESENT))]
            [(topic, records)] = _by_topic(namespace, watermark).items()
            await produce(namespace.kafka.bootstrap, topic, records)
            await eventually(lambda: _clock_saved(runtime, PRESENT))
            await scheduler.tick()
            outcome = Outcome(
                list(mailbox.messages),
                await _contacts(runtime),
                await _steps(runtime),
                await _published(runtime),
            )
        await runtime.engine.dispose()
    return outcome


async def _consume(
    namespace: Namespace,
    runtime: ServiceRuntime,
    scheduler: Scheduler,
    history: History,
) -> None:
    """Replay ``history`` one topic after the other, a scheduler pass after each.

    Customers, then invoices, then the ledger: of the orders a replay may interleave
    the topics in, the one where every step is planned before any settlement stops
    it, so the only thing keeping the reminders back is the clock.
    """
    applied = 0
    for topic, records in _by_topic(namespace, history).items():
        await produce(namespace.kafka.bootstrap, topic, records)
        applied += len(records)
        await eventually(functools.partial(_applied, runtime, applied))
        await scheduler.tick()


def _by_topic(namespace: Namespace, history: History) -> dict[str, list[Record]]:
    """Each fact as a record of its topic, stamped with the time it happened."""
    by_topic: dict[str, list[Record]] = defaultdict(list)
    for at, event in history:
        envelope = Envelope.for_data(event, source="tests", time=at)
        record = (
            event.customer_id.encode(),
            event.model_dump_json().encode(),
            envelope.to_headers(),
        )
        by_topic[event.topic].append(record)
    return {
        f"{namespace.name}.{topic}": by_topic[topic]
        for topic in REPLAY_ORDER
        if topic in by_topic
    }


async def _applied(runtime: ServiceRuntime, count: int) -> bool:
    inbox = runtime.tables.inbox
    async with runtime.sessions() as session:
        applied = await session.scalar(
            sa.select(sa.func.count()).where(inbox.c.outcome == "applied")
        )
    return applied == count


async def _clock_saved(runtime: ServiceRuntime, moment: datetime) -> bool:
    async with runtime.sessions() as session:
        saved = await session.scalar(sa.select(messaging.clock.c.now))
    return bool(saved == moment)


async def _contacts(runtime: ServiceRuntime) -> list[tuple[str, str, str]]:
    query = sa.select(contacts.c.invoice_id, contacts.c.step, contacts.c.state)
    async with runtime.sessions() as session:
        rows = (await session.execute(query.order_by(contacts.c.id))).all()
    return [(r.invoice_id, r.step, r.state) for r in rows]


async def _steps(
    runtime: ServiceRuntime,
) -> dict[str, dict[str, tuple[str, str | None]]]:
    query = sa.select(
        steps.c.invoice_id, steps.c.step, steps.c.state, steps.c.cancel_reason
    )
    async with runtime.sessions() as session:
        rows = (await session.execute(query.order_by(steps.c.id))).all()
    result: dict[str, dict[str, tuple[str, str | None]]] = defaultdict(dict)
    for r in rows:
        result[r.invoice_id][r.step] = (r.state, r.cancel_reason)
    return dict(result)


async def _published(runtime: ServiceRuntime) -> list[tuple[str, str | None]]:
    """(event type, step) of everything dunning published, each customer's in order."""
    records = await published(runtime, topics.DUNNING)
    return [
        (header(record, "ce_type"), json.loads(record.value).get("step"))
        for record in records
    ]
