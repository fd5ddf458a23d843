"""End to end: real Kafka, PostgreSQL and SMTP; time moves by ClockAdvanced."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa

from arbor_dunning.adapters.tables import messaging, steps
from arbor_dunning.bootstrap import MIGRATIONS, create_app
from arbor_shared import topics
from arbor_shared.events import ClockAdvanced, EventData
from arbor_shared.runtime import ServiceRuntime
from tests.conftest import Namespace
from tests.dunning.conftest import balance, customer, dunning_settings, invoice, settled
from tests.dunning.receivers import smtp_server
from tests.support import (
    encode,
    eventually,
    header,
    migrate,
    produce,
    published,
    read_topic,
    running,
)

DUE_TODAY = datetime(2026, 3, 16, 8, 0, 30, tzinfo=UTC)


async def test_overdue_invoice_is_emailed_and_settlement_cancels_the_next_step(
    namespace: Namespace,
) -> None:
    issued = invoice()
    with smtp_server() as (mailbox, port):
        settings = dunning_settings(
            namespace,
            smtp_port=port,
            consumers_enabled=True,
            scheduler_enabled=True,
            scheduler_interval_seconds=0.2,
            recovery_lease_seconds=60,
        )
        await migrate(MIGRATIONS, settings)
        app = create_app(settings)
        async with running(app):
            runtime = app.state.runtime
            send = _producer(namespace)
            await send(customer(), issued)
            await send(balance(issued))

            async def planned() -> int:
                async with runtime.sessions() as session:
                    count: int = await session.scalar(
                        sa.select(sa.func.count()).where(steps.c.state == "planned")
                    )
                return count

            assert await eventually(planned) == 5
            await send(ClockAdvanced(now=DUE_TODAY))
            await eventually(lambda: _wait(len(mailbox.messages) == 1))

            await send(settled(issued, DUE_TODAY + timedelta(hours=2)))
            cancelled = await read_topic(
                namespace.kafka.bootstrap,
                f"{namespace.name}.{topics.DUNNING}",
                1,
            )
            later = DUE_TODAY + timedelta(days=40)
            await send(ClockAdvanced(now=later))
            await eventually(lambda: _clock_saved(runtime, later))
            # Two whole passes at the later time, so a wrong send would have happened.
            scheduler = app.state.scheduler
            ticks = scheduler.ticks
            await eventually(lambda: _wait(scheduler.ticks >= ticks + 2))
            # Read while the relay still runs: it sends whatever is left first.
            actions = await _published(runtime)

        [mail] = mailbox.messages
        assert mail["To"] == "cus-1@example.com"
        assert mail["Subject"] == "Invoice N-inv-1 is due today"
        assert "1,200.00 EUR" in str(mail.get_payload())
    assert cancelled
    assert ("ReminderCancelled", "plan_offer", "settled") in actions
    assert [p[1] for p in actions if p[0] == "ReminderSent"] == ["due_today"]
    assert ("ReminderCancelled", "courtesy", "missed_during_outage") in actions


def _producer(namespace: Namespace) -> Callable[..., Awaitable[None]]:
    async def send(*events: EventData) -> None:
        for event in events:
            topic = f"{namespace.name}.{event.topic}"
            await produce(namespace.kafka.bootstrap, topic, [encode(event)])

    return send


async def _wait(condition: bool) -> bool:
    return condition


async def _clock_saved(runtime: object, moment: datetime) -> bool:
    table = messaging.clock
    async with runtime.sessions() as session:  # type: ignore[attr-defined]
        saved = await session.scalar(sa.select(table.c.now))
    return bool(saved == moment)


async def _published(runtime: ServiceRuntime) -> list[tuple[str, Any, Any]]:
    """(event type, step, cancel reason) of what dunning published, in order."""
    records = await published(runtime, topics.DUNNING)
    result = []
    for record in records:
        data = orjson.loads(record.value)
        kind = header(record, "ce_type")
        result.append((kind, data.get("step"), data.get("cancel_reason")))
    return result
