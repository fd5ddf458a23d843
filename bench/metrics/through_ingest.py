"""(d) from ingest's acceptance: a payment accepted by ingest → its facts in metrics.

Ingest runs as ``python -m arbor_ingest serve`` on a fresh topic prefix and schema
(``bench.billing``); metrics runs in this process under the same prefix, consuming
the ledger topic ingest's relay publishes to. Ingest is fed a steady ``rate`` events
a second through ``POST /v1/events:batch`` (``feed``).

A payment is timed from the moment ingest answered 200 naming it accepted (the
batch's commit) to the commit, in metrics' schema, of the later of the two facts it
caused: ``InvoiceBalanceChanged`` and ``InvoiceSettled``. The KPIs are computed from
those rows at read time, so committed is reflected. A trigger the benchmark adds to
``invoice_snapshots`` notifies each settled row (``bench.common.Notifications``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from arbor_metrics.bootstrap import MIGRATIONS, create_app
from arbor_metrics.config import MetricsSettings
from arbor_shared import topics
from arbor_shared.db.migrations import upgrade_async
from arbor_shared.local_issuer import LocalIssuer
from bench import cpu
from bench.billing import PARTITIONS, Run, ingest_process, post_accepted
from bench.common import (
    Notifications,
    delete_topics,
    drop_schemas,
    load_samples,
    plain_url,
    produced_at,
    summary,
)
from bench.metrics.feed import (
    BATCH_EVENTS,
    CUSTOMERS_PER_BATCH,
    INVOICES_PER_BATCH,
    Answers,
    Feed,
    accounts,
    send_all,
)
from tests.e2e.processes import ServiceProcess

CATCH_UP_SECONDS = 300.0
DRAIN_SECONDS = 120.0

_TRIGGER = """
CREATE FUNCTION "{schema}".bench_settled() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('{schema}', NEW.kind || ' ' || NEW.invoice_id);
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER bench_settled AFTER INSERT ON "{schema}".invoice_snapshots
  FOR EACH ROW WHEN (NEW.status = 'settled')
  EXECUTE FUNCTION "{schema}".bench_settled();
"""
# The two rows a full payment adds: its InvoiceBalanceChanged and InvoiceSettled.
_KINDS = ("balance", "settled")


async def run(names: Run, settings: MetricsSettings, feed: Feed) -> dict[str, Any]:
    """Start ingest, set up, feed it at the steady rate, and time every payment.

    ``settings`` are metrics' under ``names``' prefix and its ``metrics`` schema.
    """
    names.logs.mkdir(parents=True, exist_ok=True)
    (names.logs / "ingest.log").unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="arbor-bench-issuer-") as scratch:
        issuer = LocalIssuer(Path(scratch))
        ingest = ingest_process(names, issuer, feed.batches_per_second)
        try:
            ingest.migrate()
            ingest.start()
            await ingest.wait_ready()
            return await _measure(names, ingest, settings, feed)
        finally:
            ingest.stop()
            schemas = (names.schema("ingest"), settings.database_schema)
            await drop_schemas(names.infra.database_url, *schemas)
            await delete_topics(names.infra.bootstrap, f"{names.prefix}.")


@dataclass(frozen=True)
class _Observed:
    """Everything the timed phase left behind."""

    answers: Answers
    committed: dict[str, float]
    published: dict[str, float]
    complete: bool
    load: list[float]
    backlog: list[int]
    cpu: dict[str, float | dict[str, float]]


async def _measure(
    names: Run, ingest: ServiceProcess, settings: MetricsSettings, feed: Feed
) -> dict[str, Any]:
    database_url = settings.database_url.get_secret_value()
    schema = settings.database_schema
    await upgrade_async(MIGRATIONS, database_url, schema)
    watch = Notifications(len(_KINDS) * feed.batches * INVOICES_PER_BATCH)
    await watch.start(database_url, schema, _TRIGGER.format(schema=schema))
    app = create_app(settings)
    assert ingest.process is not None
    pids = {"ingest": ingest.process.pid, "bench_and_metrics": os.getpid()}
    try:
        async with app.router.lifespan_context(app):
            await _set_up(ingest.url, settings, feed)
            before = cpu.snapshot(pids)
            async with load_samples() as load, _unsent(names) as backlog:
                answers = await send_all(ingest.url, feed)
                complete = await watch.wait(DRAIN_SECONDS)
            spent = cpu.spent(before, cpu.snapshot(pids), _events(feed), per="event")
    finally:
        await watch.close()
    ledger = f"{names.prefix}.{topics.LEDGER}"
    published = await produced_at(names.infra.bootstrap, ledger, PARTITIONS)
    committed = _committed(watch.seen_at)
    observed = _Observed(answers, committed, published, complete, load, backlog, spent)
    return _report(feed, observed)


def _events(feed: Feed) -> int:
    return BATCH_EVENTS * feed.batches


async def _set_up(url: str, settings: MetricsSettings, feed: Feed) -> None:
    """Create the accounts the first second pays; wait until metrics holds them,
    which also shows that its consumer is assigned."""
    customers = CUSTOMERS_PER_BATCH * feed.lag
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        await post_accepted(client, accounts(0, customers, datetime.now(UTC)))
    await _caught_up(settings, 2 * customers)


@contextlib.asynccontextmanager
async def _unsent(names: Run) -> AsyncIterator[list[int]]:
    """Ingest's outbox rows not yet relayed to Kafka, counted every second."""
    query = f'SELECT count(*) FROM "{names.schema("ingest")}".outbox'
    connection = await asyncpg.connect(plain_url(names.infra.database_url))
    samples: list[int] = []

    async def sample() -> None:
        while True:
            samples.append(await connection.fetchval(query))
            await asyncio.sleep(1.0)

    task = asyncio.create_task(sample())
    try:
        yield samples
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await connection.close()


async def _caught_up(settings: MetricsSettings, invoices: int) -> None:
    schema = settings.database_schema
    query = f'SELECT count(*) FROM "{schema}".invoice_facts'
    connection = await asyncpg.connect(
        plain_url(settings.database_url.get_secret_value())
    )
    deadline = time.monotonic() + CATCH_UP_SECONDS
    try:
        while (seen := await connection.fetchval(query)) < invoices:
            if time.monotonic() > deadline:
                raise TimeoutError(f"metrics holds {seen} of {invoices} invoices")
            await asyncio.sleep(0.2)
    finally:
        await connection.close()


def _committed(seen: dict[str, float]) -> dict[str, float]:
    """By invoice, when the later of its payment's two facts committed in metrics."""
    moments: dict[str, list[float]] = {}
    for payload, moment in seen.items():
        _kind, invoice_id = payload.split(" ")
        moments.setdefault(invoice_id, []).append(moment)
    return {i: max(m) for i, m in moments.items() if len(m) == len(_KINDS)}


def _report(feed: Feed, observed: _Observed) -> dict[str, Any]:
    answers = observed.answers
    timed = range(feed.warmup_batches, feed.batches)
    answered = [k for k in timed if k in answers.answered]
    window = max(answers.answered[k] for k in answered) - answers.sent[timed[0]]
    invoices = [
        f"inv-{i}"
        for k in answered
        for i in range(INVOICES_PER_BATCH * k, INVOICES_PER_BATCH * (k + 1))
        if f"inv-{i}" in answers.accepted
    ]
    legs = _legs(invoices, observed)
    return {
        "measured_from": "ingest's 200 naming the payment accepted",
        "rate_per_second": feed.rate,
        "batch_events": BATCH_EVENTS,
        "seconds": feed.seconds,
        "warmup_seconds": feed.warmup,
        "achieved_events_per_second": round(BATCH_EVENTS * len(answered) / window, 1),
        "batch_statuses": dict(answers.statuses),
        "item_outcomes": dict(answers.items),
        "payments_accepted": len(invoices),
        "payments_timed": len(legs["accepted_to_committed"]),
        "complete": observed.complete,
        "latency": summary(legs.pop("accepted_to_committed")),
        "ingest_answer": summary(
            [1000 * (answers.answered[k] - answers.sent[k]) for k in answered]
        ),
        "stages": {leg: summary(values) for leg, values in legs.items()},
        "ingest_outbox_unsent_each_second": observed.backlog,
        "cpu": observed.cpu,
        "load_average_1m_during": {
            "min": min(observed.load, default=float("nan")),
            "max": max(observed.load, default=float("nan")),
        },
    }


def _legs(invoices: list[str], observed: _Observed) -> dict[str, list[float]]:
    """Milliseconds per timed payment: in all, and split at the broker.

    The split is the broker's timestamp of the payment's first ledger fact (the
    relay takes both facts in one go), on the wall clock, turned into
    ``perf_counter``: ingest's relay before it, metrics' consumer after.
    """
    accepted = observed.answers.accepted
    offset = observed.answers.wall_offset
    legs: dict[str, list[float]] = {
        "accepted_to_committed": [],
        "accepted_to_kafka": [],
        "kafka_to_committed": [],
    }
    for invoice_id in invoices:
        done = observed.committed.get(invoice_id)
        if done is None:
            continue
        legs["accepted_to_committed"].append(1000 * (done - accepted[invoice_id]))
        out = observed.published.get(invoice_id)
        if out is not None:
            legs["accepted_to_kafka"].append(
                1000 * (out - offset - accepted[invoice_id])
            )
            legs["kafka_to_committed"].append(1000 * (done - out + offset))
    return legs
