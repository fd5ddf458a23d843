"""A dunning service on the real PostgreSQL, driven by hand: events in, ticks out."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from arbor_dunning.adapters.messages import Message
from arbor_dunning.adapters.metrics import DunningMetrics
from arbor_dunning.adapters.policy_document import PolicyDocument
from arbor_dunning.adapters.senders import ChannelSenders
from arbor_dunning.adapters.tables import messaging, steps
from arbor_dunning.bootstrap import MIGRATIONS, SERVICE, build_scheduler, create_app
from arbor_dunning.config import DunningSettings
from arbor_dunning.domain.policy import Policy, Step
from arbor_dunning.handlers import build_handlers
from arbor_dunning.policies import add_policy, seed_defaults
from arbor_dunning.scheduler import Scheduler
from arbor_shared.clock import EventClock
from arbor_shared.events import (
    CustomerCreated,
    EventData,
    InvoiceBalanceChanged,
    InvoiceIssued,
    InvoiceSettled,
)
from arbor_shared.events.envelope import Envelope
from arbor_shared.kafka.consumer import Context, Handler
from arbor_shared.runtime import ServiceRuntime
from tests.conftest import Namespace
from tests.support import migrate, service_settings

ISSUED_AT = datetime(2026, 3, 1, 12, tzinfo=UTC)


def dunning_settings(namespace: Namespace, **overrides: Any) -> DunningSettings:
    values: dict[str, Any] = {
        "clock": "event",
        "smtp_host": "127.0.0.1",
        "smtp_port": 2525,
        "mail_from": "billing@arbor.example",
        "webhook_url": "http://127.0.0.1:9/hook",
        "webhook_secret": "test-secret-of-enough-length",
        "consumers_enabled": False,
        "scheduler_enabled": False,
        "recovery_lease_seconds": 0,
    }
    return service_settings(DunningSettings, namespace, SERVICE, **(values | overrides))


class CrashError(BaseException):
    """Stands for the process dying: no ``except Exception`` catches it."""


@dataclass
class FakeSender:
    """Records what was handed over; can refuse or die after taking a message."""

    sent: list[Message] = field(default_factory=list)
    crash_after_taking: bool = False

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        if self.crash_after_taking:
            self.crash_after_taking = False
            raise CrashError

    def steps(self) -> list[tuple[str, str]]:
        return [(m.invoice_id, m.subject) for m in self.sent]


@dataclass
class Harness:
    runtime: ServiceRuntime
    clock: EventClock
    scheduler: Scheduler
    sender: FakeSender
    handlers: dict[str, Handler]
    metrics: DunningMetrics
    settings: DunningSettings

    async def feed(self, *events: EventData) -> None:
        """Apply events as the consumer would, one transaction each."""
        for event in events:
            envelope = Envelope.for_data(event, source="tests", time=self.clock.now())
            async with self.runtime.sessions.begin() as session:
                ctx = Context(session, self.runtime.outbox, self.clock, envelope)
                await self.handlers[event.event_type](ctx, event)

    async def use_policy(self, *ladder: Step, cohort: str = "default") -> int:
        """Store a new version of ``cohort``'s policy with ``ladder``; its number."""
        document = PolicyDocument.from_policy(Policy(cohort, 0, ladder))
        async with self.runtime.sessions.begin() as session:
            return await add_policy(
                session,
                self.runtime.outbox,
                cohort=cohort,
                document=document,
                created_by="test",
                now=self.clock.now(),
            )

    async def at(self, moment: datetime) -> None:
        """Move the clock to ``moment`` and run one scheduler pass."""
        self.clock.advance_to(moment)
        await self.scheduler.tick()

    async def run_until_idle(self, limit: int = 50) -> None:
        """Tick at each next planned instant until nothing is planned."""
        for _ in range(limit):
            nxt = await self.next_due()
            if nxt is None:
                return
            await self.at(max(nxt, self.clock.now()))
        raise AssertionError("the schedule never ran out")

    async def next_due(self) -> datetime | None:
        async with self.runtime.sessions() as session:
            due: datetime | None = await session.scalar(
                sa.select(sa.func.min(steps.c.due_at)).where(steps.c.state == "planned")
            )
        return due

    async def due_now(self) -> int:
        async with self.runtime.sessions() as session:
            count = await session.scalar(
                sa.select(sa.func.count()).where(
                    steps.c.state == "planned", steps.c.due_at <= self.clock.now()
                )
            )
        return int(count or 0)

    async def published(self, event_type: str) -> list[dict[str, Any]]:
        """Data of the events of ``event_type`` in the outbox, in order."""
        table = messaging.outbox
        async with self.runtime.sessions() as session:
            rows = (await session.execute(sa.select(table).order_by(table.c.seq))).all()
        return [
            json.loads(r.value)
            for r in rows
            if dict((k, v) for k, v in r.headers).get("ce_type") == event_type
        ]

    async def step_states(self, invoice_id: str) -> dict[str, tuple[str, str | None]]:
        async with self.runtime.sessions() as session:
            rows = (
                await session.execute(
                    sa.select(steps.c.step, steps.c.state, steps.c.cancel_reason)
                    .where(steps.c.invoice_id == invoice_id)
                    .order_by(steps.c.id)
                )
            ).all()
        return {r.step: (r.state, r.cancel_reason) for r in rows}


async def make_harness(namespace: Namespace, **overrides: Any) -> Harness:
    settings = dunning_settings(namespace, **overrides)
    runtime = ServiceRuntime.create(SERVICE, settings, messaging)
    assert isinstance(runtime.clock, EventClock)
    runtime.clock.advance_to(ISSUED_AT)
    metrics = DunningMetrics.create(runtime.metrics.registry)
    sender = FakeSender()
    scheduler = build_scheduler(
        runtime, settings, metrics, ChannelSenders(sender, sender)
    )
    async with runtime.sessions.begin() as session:
        await seed_defaults(session, ["default"])
    return Harness(
        runtime,
        runtime.clock,
        scheduler,
        sender,
        build_handlers(metrics),
        metrics,
        settings,
    )


@pytest.fixture
async def dunning(namespace: Namespace) -> AsyncIterator[Harness]:
    await migrate(MIGRATIONS, dunning_settings(namespace))
    harness = await make_harness(namespace)
    yield harness
    await harness.runtime.engine.dispose()


@pytest.fixture
async def api(
    dunning: Harness, namespace: Namespace
) -> AsyncIterator[httpx.AsyncClient]:
    """The operations API of the harness's service, called as an operator."""
    app = create_app(dunning.settings)
    token = namespace.issuer.mint("ops-1", roles=("operator",))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://dunning",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client
    await app.state.runtime.engine.dispose()


def customer(
    customer_id: str = "cus-1",
    *,
    time_zone: str = "Europe/Berlin",
    country: str = "DE",
    language: str = "en",
    channel: str = "email",
) -> CustomerCreated:
    return CustomerCreated(
        customer_id=customer_id,
        name="Muster GmbH",
        email=f"{customer_id}@example.com",
        country=country,
        time_zone=time_zone,
        currency="EUR",
        language=language,
        preferred_channel=channel,  # type: ignore[arg-type]
        started_on=date(2025, 1, 1),
    )


def invoice(
    invoice_id: str = "inv-1",
    customer_id: str = "cus-1",
    *,
    due: date = date(2026, 3, 16),
    amount: int = 120_000,
    currency: str = "EUR",
) -> InvoiceIssued:
    return InvoiceIssued(
        customer_id=customer_id,
        invoice_id=invoice_id,
        number=f"N-{invoice_id}",
        currency=currency,
        amount_minor=amount,
        issue_date=date(2026, 2, 14),
        due_date=due,
        issued_at=ISSUED_AT,
    )


def balance(
    issued: InvoiceIssued, *, paid: int = 0, status: str = "open"
) -> InvoiceBalanceChanged:
    return InvoiceBalanceChanged(
        customer_id=issued.customer_id,
        invoice_id=issued.invoice_id,
        currency=issued.currency,
        issue_date=issued.issue_date,
        due_date=issued.due_date,
        amount_minor=issued.amount_minor,
        paid_minor=paid,
        credited_minor=0,
        written_off_minor=0,
        balance_minor=issued.amount_minor - paid,
        status=status,  # type: ignore[arg-type]
        cause_event_id="pay-1",
        cause_event_type="PaymentReceived",
        changed_at=ISSUED_AT,
    )


def settled(issued: InvoiceIssued, at: datetime) -> InvoiceSettled:
    return InvoiceSettled(
        customer_id=issued.customer_id,
        invoice_id=issued.invoice_id,
        currency=issued.currency,
        issue_date=issued.issue_date,
        due_date=issued.due_date,
        amount_minor=issued.amount_minor,
        paid_minor=issued.amount_minor,
        credited_minor=0,
        written_off_minor=0,
        settled_by="payment",
        settled_at=at,
        settled_date=at.date(),
    )
