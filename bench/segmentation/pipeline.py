"""The IBM sample replayed in time order through the real pipeline.

The offline evaluation (``evaluate_ibm.py``) applies the sample's events to the
domain model directly. Here the same timeline travels the way production data does:
signed batches to ingest's ``/v1/events:batch``, ingest's ledger turning each payment
into the balance change and settlement it causes, its outbox relay publishing to
Kafka, and the segmentation service consuming those topics in event-clock mode, with
its durable due-date timers firing as simulated time passes. The scores are the
``InvoiceRiskAssessed`` events segmentation publishes, read back from their topic.

Simulated time moves a day at a time. Each day is one batch: a ``ClockAdvanced`` to
the day's midnight, then the day's events in time order. The next day is sent only
once segmentation has consumed everything ingest staged for it and has fired every
timer that fell due, so no day's facts overtake the previous day's on the way (Kafka
orders records within a partition, not across the several topics segmentation reads).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time as time_module
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

import httpx
import orjson
import sqlalchemy as sa
from fastapi import FastAPI

from arbor_ingest import bootstrap as ingest
from arbor_ingest.signing import sign
from arbor_segmentation import bootstrap as segmentation
from arbor_segmentation.adapters.tables import due_timers, memberships
from arbor_segmentation.adapters.tables import messaging as segmentation_messaging
from arbor_segmentation.config import SegmentationSettings
from arbor_shared import topics
from arbor_shared.events import (
    Allocation,
    ClockAdvanced,
    EventData,
    InvoiceRiskAssessed,
    InvoiceSettled,
    PaymentReceived,
)
from arbor_shared.local_issuer import LocalIssuer
from arbor_shared.runtime import ServiceRuntime
from bench.segmentation import evaluate_ibm as offline
from tests.conftest import Namespace
from tests.infra import start_kafka, start_postgres
from tests.ingest.conftest import CLOCK, ingest_settings
from tests.support import migrate, read_topic, relayed, running, service_settings

_IDS = uuid.UUID("0b8f4f7e-6c1d-4d2a-9e57-1f3c2a9d5e60")
DAY_TIMEOUT_SECONDS = 120.0
"""How long one simulated day may take to travel; only a stuck pipeline exceeds it."""
POLL_SECONDS = 0.01


@dataclass(frozen=True)
class PipelineScores:
    """Due-date scores from segmentation's topic, beside the CSV's own baseline."""

    model: list[float]
    baseline: list[float]
    late: list[bool]
    cohorts: Counter[str]
    events_sent: int
    assessments_read: int


def days(rows: list[offline.Row]) -> list[tuple[date, list[EventData]]]:
    """The offline timeline as ingest is sent it, grouped by day in time order.

    Settlements are not sent: ingest's ledger derives them from the payments, which
    is what is being tested. Every invoice is paid in full by one payment.
    """
    grouped: dict[date, list[EventData]] = defaultdict(list)
    for moment, _, event in offline.events(rows):
        grouped[moment.date()].append(_as_sent(event))
    return sorted(grouped.items())


def _as_sent(event: EventData) -> EventData:
    if not isinstance(event, InvoiceSettled):
        return event
    return PaymentReceived(
        customer_id=event.customer_id,
        payment_id=f"pay-{event.invoice_id}",
        currency=event.currency,
        amount_minor=event.paid_minor,
        received_at=event.settled_at,
        allocations=(
            Allocation(invoice_id=event.invoice_id, amount_minor=event.paid_minor),
        ),
    )


async def replay(
    namespace: Namespace, rows: list[offline.Row], year: int
) -> PipelineScores:
    """Send the sample through ingest and segmentation; score ``year``'s invoices."""
    async with _started(namespace) as (ingest_app, segmentation_app):
        pipeline = _Pipeline(ingest_app, segmentation_app)
        sent = 0
        for day, events in days(rows):
            sent += await pipeline.send_day(day, events)
        assessments = await pipeline.assessments()
        cohorts = await pipeline.cohorts()
    baseline, _ = offline.replay(rows, year)
    chosen = [row for row in rows if row.issued.year == year]
    return PipelineScores(
        model=[_at_due(assessments, row) for row in chosen],
        baseline=baseline.baseline,
        late=[row.days_late > 0 for row in chosen],
        cohorts=cohorts,
        events_sent=sent,
        assessments_read=sum(len(found) for found in assessments.values()),
    )


def _at_due(
    assessments: dict[str, list[InvoiceRiskAssessed]], row: offline.Row
) -> float:
    """The last probability published for the invoice on or before its due date."""
    known = [a for a in assessments[row.invoice] if a.assessed_at.date() <= row.due]
    return known[-1].late_probability


@asynccontextmanager
async def _started(namespace: Namespace) -> AsyncIterator[tuple[FastAPI, FastAPI]]:
    ingest_config = ingest_settings(namespace)
    segmentation_config = service_settings(
        SegmentationSettings,
        namespace,
        "segmentation",
        clock="event",
        timer_poll_seconds=0.02,
    )
    await migrate(ingest.MIGRATIONS, ingest_config)
    await migrate(segmentation.MIGRATIONS, segmentation_config)
    ingest_app = ingest.create_app(ingest_config)
    segmentation_app = segmentation.create_app(segmentation_config)
    async with running(ingest_app), running(segmentation_app):
        yield ingest_app, segmentation_app


def _runtime(app: FastAPI) -> ServiceRuntime:
    runtime: ServiceRuntime = app.state.runtime
    return runtime


class _Pipeline:
    """Ingest and segmentation in-process, fed day by day."""

    def __init__(self, ingest_app: FastAPI, segmentation_app: FastAPI) -> None:
        self.ingest = _runtime(ingest_app)
        self.segmentation = _runtime(segmentation_app)
        self._transport = httpx.ASGITransport(app=ingest_app)
        base = [*segmentation.INPUT_TOPICS, topics.CLOCK]
        self._consumed = [self.ingest.topics(t) for t in base]

    async def send_day(self, day: date, events: list[EventData]) -> int:
        """Post the day's batch, then wait until segmentation has caught up."""
        midnight = datetime.combine(day, time(0), UTC)
        batch = [ClockAdvanced(now=midnight), *events]
        await self._post(batch)
        deadline = time_module.monotonic() + DAY_TIMEOUT_SECONDS
        while not await self._caught_up(midnight):
            if time_module.monotonic() > deadline:
                raise TimeoutError(f"segmentation did not finish {day} in time")
            await asyncio.sleep(POLL_SECONDS)
        return len(batch)

    async def _post(self, batch: Iterable[EventData]) -> None:
        body = orjson.dumps({"events": [_submission(e) for e in batch]})
        headers = sign(body, CLOCK.key_id, CLOCK.secret, datetime.now(UTC))
        headers["Content-Type"] = "application/json"
        async with httpx.AsyncClient(
            transport=self._transport, base_url="http://ingest", timeout=60
        ) as client:
            response = await client.post(
                "/v1/events:batch", content=body, headers=headers
            )
        response.raise_for_status()
        refused = [r for r in response.json()["results"] if r["status"] != "accepted"]
        if refused:
            raise RuntimeError(f"ingest did not accept the whole day: {refused}")

    async def _caught_up(self, midnight: datetime) -> bool:
        if self.segmentation.clock.now() < midnight:
            return False
        staged = await self._staged_for_segmentation()
        async with self.segmentation.sessions() as session:
            consumed = await session.scalar(
                sa.select(sa.func.count()).select_from(segmentation_messaging.inbox)
            )
            waiting = await session.scalar(
                sa.select(sa.func.count())
                .select_from(due_timers)
                .where(due_timers.c.fire_at <= midnight)
            )
        return consumed == staged and waiting == 0

    async def _staged_for_segmentation(self) -> int:
        """Events ingest has staged on the topics segmentation consumes, so far."""
        # The rows still waiting first, then the relay's count of those it sent: a
        # row the relay sends in between is counted twice for one poll, never not
        # at all, because the relay counts a row before its deletion commits.
        waiting = await _unsent(self.ingest, self._consumed)
        return waiting + _relayed(self.ingest, self._consumed)

    async def assessments(self) -> dict[str, list[InvoiceRiskAssessed]]:
        """Every published assessment by invoice, in the order it was published."""
        topic = self.segmentation.topics(topics.RISK)
        while await _unsent(self.segmentation, [topic]):  # noqa: ASYNC110
            await asyncio.sleep(POLL_SECONDS)
        bootstrap = self.segmentation.settings.kafka.bootstrap
        records = await read_topic(
            bootstrap, topic, _relayed(self.segmentation, [topic])
        )
        found: dict[str, list[InvoiceRiskAssessed]] = defaultdict(list)
        for record in records:
            risk = InvoiceRiskAssessed.model_validate_json(record.value)
            found[risk.invoice_id].append(risk)
        return found

    async def cohorts(self) -> Counter[str]:
        """How many customers each cohort holds at the end of the replay."""
        async with self.segmentation.sessions() as session:
            rows = await session.execute(
                sa.select(memberships.c.cohort, sa.func.count()).group_by(
                    memberships.c.cohort
                )
            )
            return Counter({cohort: count for cohort, count in rows})


def _submission(event: EventData) -> dict[str, object]:
    content = event.model_dump(mode="json")
    identity = f"{event.event_type}:{orjson.dumps(content).decode()}"
    return {
        "id": str(uuid.uuid5(_IDS, identity)),
        "type": event.event_type,
        "data": content,
    }


def main() -> None:
    """Start a private broker and database, replay, print the figures."""
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else offline.DATA
    rows = offline.read_rows(path)
    root = Path(tempfile.mkdtemp(prefix="arbor-bench-ibm-"))
    root.chmod(0o755)
    kafka = start_kafka(root / "kafka")
    postgres = start_postgres(root / "pg")
    try:
        issuer = LocalIssuer(root / "issuer")
        namespace = Namespace("ibm", kafka, postgres, issuer)
        started = time_module.monotonic()
        scores = asyncio.run(replay(namespace, rows, 2013))
        took = time_module.monotonic() - started
    finally:
        kafka.stop()
        postgres.stop()
    report(scores, took)


def report(scores: PipelineScores, seconds: float) -> None:
    print(
        f"sent {scores.events_sent} events through ingest in {seconds:.0f} s; "
        f"read {scores.assessments_read} assessments from the risk topic"
    )
    print(f"invoices issued in 2013: {len(scores.late)}, late: {sum(scores.late)}")
    for name, values in (
        ("model, as of the due date (pipeline)", scores.model),
        ("baseline: historical late rate", scores.baseline),
    ):
        auc = offline.roc_auc(values, scores.late)
        score = offline.brier(values, scores.late)
        print(f"{name:38} ROC AUC {auc:.4f}  Brier {score:.4f}")
    for cohort, count in scores.cohorts.most_common():
        print(f"cohort {cohort:31} {count}")


async def _unsent(runtime: ServiceRuntime, topic_names: list[str]) -> int:
    """Outbox rows of ``runtime`` on ``topic_names`` the relay has not sent yet."""
    outbox = runtime.tables.outbox
    async with runtime.sessions() as session:
        count = await session.scalar(
            sa.select(sa.func.count())
            .select_from(outbox)
            .where(outbox.c.topic.in_(topic_names))
        )
    return int(count or 0)


def _relayed(runtime: ServiceRuntime, topic_names: list[str]) -> int:
    """Records the relay of ``runtime`` has had acknowledged on ``topic_names``."""
    return sum(relayed(runtime)[name] for name in topic_names)


if __name__ == "__main__":
    main()
