"""RELIABILITY F2, F7, F8, F9: the relay, the broker and the database fail under load.

These tests crash and stop the broker and the database themselves, so the module
runs its own private Kafka and PostgreSQL (never the shared ones a developer may
point the suite at); ingest and the effects app (tests/faults/effects_app.py) run
as real processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from arbor_shared.db import create_engine
from arbor_shared.events import InvoiceIssued
from tests.conftest import Namespace
from tests.e2e.processes import ServiceProcess
from tests.faults.harness import (
    all_applied,
    applications,
    committed_offsets,
    effects_group,
    effects_process,
    ingest_client,
    ingest_process,
    invoice,
    invoices_topic,
    metric,
    outbox_drained,
    post_signed,
    readyz,
    topic_ce_ids,
    wait_committed,
)
from tests.infra import KafkaHandle, PostgresHandle, start_kafka, start_postgres
from tests.support import encode, eventually, produce

pytestmark = pytest.mark.faults

# The relay's produce requests time out after 30 s (clients.py), and only then does
# it report itself unhealthy; broker restarts also replay their logs.
OUTAGE_TIMEOUT_SECONDS = 90.0
UNREADY_TIMEOUT_SECONDS = 45.0
RECOVERY_TIMEOUT_SECONDS = 60.0
DRAIN_TIMEOUT_SECONDS = 120.0
POST_INTERVAL_SECONDS = 0.05


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaHandle]:
    """A private broker: these tests kill it, which others must never see."""
    handle = start_kafka(tmp_path_factory.mktemp("faults-kafka"))
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresHandle]:
    """A private server in a world-searchable dir (it runs unprivileged as root)."""
    state_dir = Path(tempfile.mkdtemp(prefix="arbor-faults-pg-"))
    state_dir.chmod(0o755)
    handle = start_postgres(state_dir)
    yield handle
    handle.stop()
    shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
async def effects_engine(namespace: Namespace) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(namespace.postgres.url, namespace.schema("effects"))
    yield engine
    await engine.dispose()


@contextlib.contextmanager
def stopped_at_exit(*processes: ServiceProcess) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            process.stop()


async def test_relay_killed_after_ack_publishes_twice_and_effect_applies_once(
    namespace: Namespace, tmp_path: Path, effects_engine: AsyncEngine
) -> None:
    ingest = await ingest_process(namespace, tmp_path)
    effects = effects_process(namespace, tmp_path)
    topic = invoices_topic(namespace)
    with stopped_at_exit(ingest, effects):
        effects.start()
        ingest.start(extra_env={"ARBOR_FAILPOINTS": "relay_after_ack"})
        await asyncio.gather(ingest.wait_ready(), effects.wait_ready())

        # The relay dies once the broker acknowledged, before it deletes the row;
        # the answer may or may not have left the process by then.
        async with ingest_client(ingest) as client:
            with contextlib.suppress(httpx.TransportError):
                assert await post_signed(client, "/v1/events", invoice(1)) == 202
        assert await ingest.wait_exit() == 137

        ingest.start()
        await ingest.wait_ready()
        await eventually(
            outbox_drained(ingest, namespace), timeout=DRAIN_TIMEOUT_SECONDS
        )
        published = await topic_ce_ids(namespace.kafka.bootstrap, topic)
        await wait_committed(namespace.kafka.bootstrap, effects_group(namespace), 2)

    assert published == ["ev-inv-1", "ev-inv-1"]
    assert await applications(effects_engine) == {"inv-1": 1}


class Stream:
    """Posts one invoice after another to ingest, remembering every answer."""

    def __init__(self, process: ServiceProcess) -> None:
        self.process = process
        self.acknowledged: list[str] = []
        self.statuses: list[int | str] = []
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 30)

    async def at_least(self, count: int) -> None:
        async def reached() -> bool:
            self._raise_if_crashed()
            return len(self.acknowledged) >= count

        await eventually(reached, timeout=60)

    async def more_than(self, count: int) -> None:
        await self.at_least(count + 1)

    async def _run(self) -> None:
        number = 0
        async with ingest_client(self.process) as client:
            while not self._stopping.is_set():
                number += 1
                event = invoice(number)
                try:
                    status = await post_signed(client, "/v1/events", event)
                except httpx.TransportError as exc:
                    self.statuses.append(type(exc).__name__)
                else:
                    self.statuses.append(status)
                    if 200 <= status < 300:
                        self.acknowledged.append(event["id"])
                await asyncio.sleep(POST_INTERVAL_SECONDS)

    def _raise_if_crashed(self) -> None:
        if self._task is not None and self._task.done():
            self._task.result()


async def test_broker_killed_and_restarted_loses_no_acknowledged_event(
    namespace: Namespace, kafka: KafkaHandle, tmp_path: Path
) -> None:
    ingest = await ingest_process(namespace, tmp_path)
    stream = Stream(ingest)
    with stopped_at_exit(ingest):
        ingest.start()
        await ingest.wait_ready()
        stream.start()
        await stream.at_least(20)

        # kill -9 while the relay produces; the stream goes on throughout.
        await asyncio.to_thread(kafka.kill)
        await asyncio.to_thread(kafka.restart)
        await stream.more_than(len(stream.acknowledged) + 10)
        await stream.stop()

        await eventually(
            outbox_drained(ingest, namespace), timeout=DRAIN_TIMEOUT_SECONDS
        )
        published = await topic_ce_ids(kafka.bootstrap, invoices_topic(namespace))

    assert set(stream.acknowledged) <= set(published)


async def test_broker_unreachable_keeps_accepting_and_publishes_after_return(
    namespace: Namespace, kafka: KafkaHandle, tmp_path: Path
) -> None:
    ingest = await ingest_process(namespace, tmp_path)
    stream = Stream(ingest)
    with stopped_at_exit(ingest):
        ingest.start()
        await ingest.wait_ready()
        stream.start()
        await stream.at_least(5)

        await asyncio.to_thread(kafka.stop_keeping_data)
        try:
            answered_before_outage = len(stream.statuses)
            # The stream goes on against the outbox while the broker is away; a
            # send unacknowledged for 20 s makes the relay report itself unready.
            unready = await _within(_not_ready(ingest), UNREADY_TIMEOUT_SECONDS)
            answers_during_outage = stream.statuses[answered_before_outage:]
        finally:
            await asyncio.to_thread(kafka.restart)
        await stream.more_than(len(stream.acknowledged))
        await stream.stop()
        committed = await _committed_event_ids(namespace)
        drained = await _within(
            outbox_drained(ingest, namespace), RECOVERY_TIMEOUT_SECONDS
        )
        published = await topic_ce_ids(kafka.bootstrap, invoices_topic(namespace))

    # 2xx from the outbox while the broker is away, never without a commit; the
    # relay says it is stuck on /readyz, and everything is published afterwards.
    assert answers_during_outage
    assert set(answers_during_outage) == {202}
    assert set(stream.acknowledged) <= committed
    assert unready
    assert drained
    assert set(stream.acknowledged) <= set(published)


async def _committed_event_ids(namespace: Namespace) -> set[str]:
    engine = create_engine(namespace.postgres.url, namespace.schema("ingest"))
    try:
        async with engine.connect() as connection:
            rows = await connection.scalars(
                sa.text("SELECT event_id FROM accepted_events")
            )
            return set(rows)
    finally:
        await engine.dispose()


async def _within(probe: Callable[[], Awaitable[bool]], timeout: float) -> bool:
    try:
        return await eventually(probe, timeout=timeout)
    except AssertionError:
        return False


def _not_ready(process: ServiceProcess) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return await readyz(process) == 503

    return probe


def _ready(process: ServiceProcess) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return await readyz(process) == 200

    return probe


def _invoice_record(number: int) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """A record written straight to the topic, as another service's relay would."""
    data = InvoiceIssued(
        customer_id=f"cus-{number % 7}",
        invoice_id=f"inv-{number}",
        currency="EUR",
        amount_minor=10_000 + number,
        issue_date=date(2024, 3, 1),
        due_date=date(2024, 3, 31),
        issued_at=datetime(2024, 3, 1, 9, tzinfo=ZoneInfo("Europe/Paris")),
    )
    return encode(data, event_id=f"ev-inv-{number}")


async def test_database_stopped_mid_stream_refuses_writes_and_commits_no_offsets(
    namespace: Namespace,
    postgres: PostgresHandle,
    tmp_path: Path,
    effects_engine: AsyncEngine,
) -> None:
    bootstrap = namespace.kafka.bootstrap
    group = effects_group(namespace)
    ingest = await ingest_process(namespace, tmp_path)
    effects = effects_process(namespace, tmp_path)
    with stopped_at_exit(ingest, effects):
        ingest.start()
        effects.start()
        await asyncio.gather(ingest.wait_ready(), effects.wait_ready())
        processes = [ingest.process, effects.process]

        # Before: ten events through ingest, applied and their offsets committed.
        async with ingest_client(ingest) as client:
            for number in range(1, 11):
                assert await post_signed(client, "/v1/events", invoice(number)) == 202
        before = {f"inv-{n}" for n in range(1, 11)}
        await eventually(lambda: all_applied(effects_engine, before), timeout=60)
        await wait_committed(bootstrap, group, len(before))

        await asyncio.to_thread(postgres.stop_server)
        try:
            # While down: ingest refuses, and the consumer's batch of records that
            # arrive from elsewhere fails without its offsets moving.
            async with ingest_client(ingest) as client:
                down_answers = [
                    await post_signed(client, "/v1/events", invoice(number))
                    for number in range(11, 16)
                ]
            await produce(
                bootstrap,
                invoices_topic(namespace),
                [_invoice_record(n) for n in range(16, 26)],
            )
            await eventually(_retrying(effects), timeout=60)
            offsets_while_down = await committed_offsets(bootstrap, group)
        finally:
            await asyncio.to_thread(postgres.start_server)

        # After: the same processes reconnect; ingest accepts the refused events.
        await eventually(_ready(ingest), timeout=60)
        async with ingest_client(ingest) as client:
            for number in range(11, 16):
                status = await eventually(_accepted(client, invoice(number)))
                assert status == 202
        expected = {f"inv-{n}" for n in range(1, 26)}
        await eventually(lambda: all_applied(effects_engine, expected), timeout=90)
        await wait_committed(bootstrap, group, len(expected))
        applied = await applications(effects_engine)
        survivors = [ingest.process, effects.process]
        alive = [p is not None and p.poll() is None for p in survivors]

    assert set(down_answers) == {503}
    assert offsets_while_down == len(before)
    assert applied == dict.fromkeys(expected, 1)
    assert survivors == processes
    assert alive == [True, True]


def _retrying(process: ServiceProcess) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        failures = await metric(
            process, "arbor_effects_transient_failures_total", stage="consume"
        )
        return (failures or 0) > 0

    return probe


def _accepted(
    client: httpx.AsyncClient, event: dict[str, object]
) -> Callable[[], Awaitable[int | None]]:
    # A pooled connection the restart broke may cost one 503; never a 2xx without
    # the commit, so retrying the same event id is safe.
    async def probe() -> int | None:
        status = await post_signed(client, "/v1/events", event)
        return status if status != 503 else None

    return probe
