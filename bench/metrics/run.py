"""Benchmark of the metrics service: raw consume, rebuild, batch SQL, freshness.

    uv run python bench/metrics/run.py --events 100000

Freshness (d) is timed from ingest's acceptance of a payment (``through_ingest``,
the default) or from the Kafka send of a ledger fact (``--freshness-from kafka``),
or both. Uses the broker and PostgreSQL server named by
``ARBOR_TEST_KAFKA_BOOTSTRAP`` and ``ARBOR_TEST_DATABASE_URL`` (as for the tests),
or starts private ones. Every run uses its own topic prefix and schemas and deletes
both at the end. Prints the figures and writes them to ``results.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from arbor_metrics.adapters.repository import load_facts
from arbor_metrics.bootstrap import MIGRATIONS, create_app
from arbor_metrics.config import MetricsSettings
from arbor_metrics.domain.compute import KpiQuery, compute
from arbor_metrics.entrypoints.rebuild import RebuildReport, rebuild
from arbor_shared import topics
from arbor_shared.db import create_engine, session_factory
from arbor_shared.db.migrations import upgrade_async
from arbor_shared.events import EventData, InvoiceBalanceChanged, InvoiceSettled
from arbor_shared.events.envelope import Envelope
from arbor_shared.kafka.clients import ensure_topics
from arbor_shared.local_issuer import AUDIENCE, ISSUER
from arbor_shared.settings import KafkaSettings

# Run as a script (as bench/run_all.py does) the repository root is not on the path.
if str(Path(__file__).resolve().parents[2]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.billing import Run
from bench.common import Infra, delete_topics, drop_schemas, summary, write_results
from bench.metrics import through_ingest
from bench.metrics.feed import Feed

HERE = Path(__file__).resolve().parent

START = date(2023, 1, 1)
AS_OF = date(2024, 12, 31)
Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


def _encode(data: EventData) -> Record:
    envelope = Envelope.for_data(data, source="bench", time=datetime.now(UTC))
    return (
        data.customer_id.encode(),
        data.model_dump_json().encode(),
        (envelope.to_headers()),
    )


def billing_events(count: int, seed: int = 7) -> Iterator[tuple[str, EventData]]:
    """``count`` ledger facts: invoices issued, and about 85 % of them settled."""
    rng = random.Random(seed)
    produced = 0
    for number in itertools.count():
        if produced >= count:
            return
        issue = START + timedelta(days=rng.randrange(700))
        due = issue + timedelta(days=30)
        amount = rng.randrange(500, 500_000)
        common: dict[str, Any] = {
            "customer_id": f"cus-{rng.randrange(5_000)}",
            "invoice_id": f"inv-{number}",
            "currency": "EUR" if number % 5 else "USD",
            "issue_date": issue,
            "due_date": due,
            "amount_minor": amount,
            "credited_minor": 0,
            "written_off_minor": 0,
        }
        opened = datetime(issue.year, issue.month, issue.day, 9, tzinfo=UTC)
        yield (
            "balance",
            InvoiceBalanceChanged(
                **common,
                paid_minor=0,
                balance_minor=amount,
                status="open",
                cause_event_id=f"issue-{number}",
                cause_event_type="InvoiceIssued",
                changed_at=opened,
            ),
        )
        produced += 1
        settled = issue + timedelta(days=rng.randrange(0, 75))
        if rng.random() < 0.85 and settled <= AS_OF and produced < count:
            produced += 1
            yield (
                "settled",
                InvoiceSettled(
                    **common,
                    paid_minor=amount,
                    settled_by="payment",
                    settled_at=datetime(
                        settled.year, settled.month, settled.day, 15, tzinfo=UTC
                    ),
                    settled_date=settled,
                ),
            )


async def produce_all(bootstrap: str, topic: str, records: list[Record]) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=1_048_576,
    )
    await producer.start()
    started = time.perf_counter()
    try:
        for chunk in range(0, len(records), 5_000):
            futures = [
                await producer.send(topic, value=v, key=k, headers=h)
                for k, v, h in records[chunk : chunk + 5_000]
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def raw_consume(bootstrap: str, topic: str, count: int) -> tuple[float, float]:
    """(a) The ceiling: aiokafka reading every record, doing nothing with it.

    Returns the wall and the process CPU seconds."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=500,
        max_partition_fetch_bytes=1_048_576,
    )
    await consumer.start()
    seen = 0
    started, cpu = time.perf_counter(), time.process_time()
    try:
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1_000, max_records=5_000)
            seen += sum(len(part) for part in batch.values())
    finally:
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        await consumer.stop()
    return elapsed, cpu


async def timed_rebuild(
    settings: MetricsSettings, schema: str, *, via_loop: bool = False
) -> tuple[RebuildReport, float]:
    """(b) The service's rebuild, and the process CPU seconds it took."""
    cpu = time.process_time()
    report = await rebuild(settings, schema=schema, via_loop=via_loop)
    # Includes the digest's share, which is PostgreSQL's work, not this process's.
    return report, time.process_time() - cpu


BATCH_SQL = """
WITH inv AS (
    SELECT invoice_id, currency, max(amount_minor) AS amount,
           min(issue_date) AS issue, min(due_date) AS due,
           max(settled_date) FILTER (
               WHERE kind = 'settled' AND settled_date <= $1
           ) AS settled
    FROM bench_events
    WHERE issue_date <= $1
    GROUP BY invoice_id, currency
)
SELECT currency,
       count(*) AS invoices,
       count(*) FILTER (WHERE due <= $1) AS invoices_due,
       count(*) FILTER (WHERE due <= $1 AND settled <= due) AS paid_on_time,
       coalesce(sum(amount) FILTER (WHERE due <= $1), 0) AS amount_due,
       coalesce(sum(amount) FILTER (WHERE due <= $1 AND settled <= due), 0)
           AS amount_on_time,
       count(settled) AS invoices_settled,
       coalesce(sum(settled - issue), 0) AS total_days,
       percentile_disc(0.9) WITHIN GROUP (ORDER BY settled - issue) AS p90_days,
       coalesce(sum(amount) FILTER (WHERE settled IS NULL), 0) AS open_ar,
       coalesce(sum(amount) FILTER (WHERE settled IS NULL AND $1 - due > 0), 0)
           AS overdue_ar,
       coalesce(sum(amount) FILTER (WHERE settled IS NULL AND $1 - due > 90), 0)
           AS aging_90_plus
FROM inv GROUP BY currency ORDER BY currency
"""


def _row(kind: str, event: EventData) -> tuple[object, ...]:
    assert isinstance(event, InvoiceBalanceChanged | InvoiceSettled)
    settled = event.settled_date if isinstance(event, InvoiceSettled) else None
    return (
        kind,
        event.invoice_id,
        event.customer_id,
        event.currency,
        event.amount_minor,
        event.issue_date,
        event.due_date,
        settled,
    )


async def batch_sql(
    dsn: str, schema: str, rows: list[tuple[object, ...]]
) -> tuple[float, float, list[dict[str, object]]]:
    """(c) What a user would write instead: all events in a table, one SQL query."""
    connection = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await connection.execute(
            "CREATE TABLE bench_events (kind text, invoice_id text, customer_id text,"
            " currency text, amount_minor bigint, issue_date date, due_date date,"
            " settled_date date)"
        )
        started = time.perf_counter()
        await connection.copy_records_to_table("bench_events", records=rows)
        await connection.execute("ANALYZE bench_events")
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        found = await connection.fetch(BATCH_SQL, AS_OF)
        computed = time.perf_counter() - started
    finally:
        await connection.close()
    return loaded, computed, [dict(r) for r in found]


async def service_answers(
    settings: MetricsSettings,
) -> tuple[float, dict[str, dict[str, object]]]:
    """The service's own read-time computation over its stored facts."""
    engine = create_engine(
        settings.database_url.get_secret_value(), settings.database_schema
    )
    answers: dict[str, dict[str, object]] = {}
    started = time.perf_counter()
    async with session_factory(engine)() as session, session.begin():
        for currency in ("EUR", "USD"):
            facts = await load_facts(session, currency=currency)
            kpis = compute(facts, KpiQuery(as_of=AS_OF, currency=currency))
            answers[currency] = {
                "invoices": kpis.invoices,
                "invoices_due": kpis.on_time.invoices_due,
                "paid_on_time": kpis.on_time.paid_on_time,
                "amount_due": kpis.on_time.amount_due_minor,
                "amount_on_time": kpis.on_time.amount_paid_on_time_minor,
                "invoices_settled": kpis.days_to_pay.invoices_settled,
                "total_days": kpis.days_to_pay.total_days,
                "p90_days": kpis.days_to_pay.p90_days,
                "open_ar": kpis.aging.open_minor,
                "overdue_ar": kpis.aging.overdue_minor,
                "aging_90_plus": kpis.aging.buckets_minor["90_plus"],
            }
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return elapsed, answers


async def freshness(
    settings: MetricsSettings, dsn: str, rate: int, seconds: float
) -> list[float]:
    """(d) from the Kafka send: produce facts at ``rate``/s; time until each is
    committed where KPIs read. Returns seconds, in ascending order."""
    await upgrade_async(
        MIGRATIONS, settings.database_url.get_secret_value(), settings.database_schema
    )
    topic = settings.kafka.topic_prefix + "." + topics.LEDGER
    total = int(rate * seconds)
    events = [
        e
        for _, e in billing_events(2 * total, seed=11)
        if isinstance(e, InvoiceBalanceChanged)
    ][:total]
    records = [_encode(e) for e in events]
    sent: list[float] = []
    seen: list[float] = []
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await asyncio.sleep(5)  # let the consumer join its group
        connection = await asyncpg.connect(
            dsn, server_settings={"search_path": settings.database_schema}
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=0,
        )
        await producer.start()

        async def poll() -> None:
            while len(seen) < total:
                count = await connection.fetchval(
                    "SELECT count(*) FROM invoice_snapshots"
                )
                now = time.perf_counter()
                seen.extend([now] * (count - len(seen)))
                await asyncio.sleep(0.005)

        poller = asyncio.create_task(poll())
        start = time.perf_counter()
        for index, (key, value, headers) in enumerate(records):
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent.append(time.perf_counter())
            await producer.send(topic, value=value, key=key, headers=headers)
        await producer.flush()
        await asyncio.wait_for(poller, timeout=120)
        await producer.stop()
        await connection.close()
    # The k-th fact committed is matched with the k-th produced: partitions may
    # reorder by a few records, which shifts single samples, not the percentiles.
    return sorted(s - p for s, p in zip(seen, sent, strict=True))


def _settings(
    database_url: str, bootstrap: str, prefix: str, schema: str
) -> MetricsSettings:
    return MetricsSettings(
        database_url=database_url,
        database_schema=schema,
        database_pool_size=3,
        kafka=KafkaSettings(bootstrap=bootstrap, topic_prefix=prefix),
        oidc_issuer=ISSUER,
        oidc_audience=AUDIENCE,
        oidc_jwks_url="file:///dev/null",
        http_port=1,
        log_format="console",
        log_level="WARNING",
    )


async def consume_figures(
    bootstrap: str, settings: MetricsSettings, count: int, repeats: int
) -> dict[str, object]:
    """(a) and (b) back to back ``repeats`` times, then (b'), on the same topic."""
    topic = settings.kafka.topic_prefix + "." + topics.LEDGER
    prefix = settings.kafka.topic_prefix
    pairs = []
    for _ in range(repeats):
        raw, raw_cpu = await raw_consume(bootstrap, topic, count)
        print(f"(a) raw consume {count / raw:,.0f} events/s", flush=True)
        report, cpu = await timed_rebuild(settings, f"{prefix}_rebuild")
        print(f"(b) rebuild {count / report.seconds:,.0f} events/s", flush=True)
        pairs.append((raw, raw_cpu, report, cpu))
    # The median pair by share of raw: the machine's load moves both figures.
    raw, raw_cpu, report, cpu = sorted(pairs, key=lambda p: p[0] / p[2].seconds)[
        len(pairs) // 2
    ]
    looped, looped_cpu = await timed_rebuild(
        settings, f"{prefix}_looped", via_loop=True
    )
    print(f"(b') through the loop {count / looped.seconds:,.0f} events/s", flush=True)
    assert looped.digest == report.digest, "the two rebuilds stored different facts"
    return {
        "rebuild_share_of_raw_each_run": [round(p[0] / p[2].seconds, 3) for p in pairs],
        "raw_consume_events_per_second": round(count / raw),
        "raw_consume_cpu_us_per_event": round(1e6 * raw_cpu / count, 1),
        "rebuild_seconds": round(report.seconds, 2),
        "rebuild_events_per_second": round(count / report.seconds),
        "rebuild_share_of_raw": round(raw / report.seconds, 3),
        "rebuild_cpu_us_per_event": round(1e6 * cpu / count, 1),
        "rebuild_cpu_share_of_raw": round(raw_cpu / cpu, 3),
        "rebuild_digest_seconds": round(report.digest_seconds, 2),
        "incremental_cost_per_event_ms": round(1000 * report.seconds / count, 4),
        "rebuild_through_loop_seconds": round(looped.seconds, 2),
        "rebuild_through_loop_events_per_second": round(count / looped.seconds),
        "rebuild_through_loop_share_of_raw": round(raw / looped.seconds, 3),
        "rebuild_through_loop_cpu_us_per_event": round(1e6 * looped_cpu / count, 1),
    }


async def answer_figures(
    settings: MetricsSettings, dsn: str, generated: list[tuple[str, EventData]]
) -> dict[str, object]:
    """(c) the batch SQL, checked against the service's answers from (b)'s facts."""
    prefix = settings.kafka.topic_prefix
    loaded, computed, batch = await batch_sql(
        dsn, f"{prefix}_batch", [_row(kind, e) for kind, e in generated]
    )
    print(f"(c) batch: COPY {loaded:.2f} s, SQL {computed:.2f} s", flush=True)
    rebuilt = settings.model_copy(update={"database_schema": f"{prefix}_rebuild"})
    read_seconds, answers = await service_answers(rebuilt)
    agree = all(
        answers[str(row["currency"])]
        == {k: v for k, v in row.items() if k != "currency"}
        for row in batch
    )
    print(f"    service read-time compute {read_seconds:.2f} s; agree={agree}")
    return {
        "batch_copy_seconds": round(loaded, 2),
        "batch_sql_seconds": round(computed, 2),
        "service_read_time_compute_seconds": round(read_seconds, 2),
        "batch_equals_service": agree,
    }


async def freshness_figures(
    arguments: argparse.Namespace, url: str, prefix: str
) -> dict[str, object]:
    """(d) as ``--freshness-from`` asks, each on topics and schemas of its own."""
    figures: dict[str, object] = {}
    if arguments.freshness_from in ("ingest", "both"):
        fresh = await _from_ingest(arguments, url, prefix)
        _print_freshness("(d) from ingest's acceptance", fresh)
        figures["freshness_from_ingest_acceptance"] = fresh
    if arguments.freshness_from in ("kafka", "both"):
        fresh = await _from_kafka_send(arguments, url, prefix)
        _print_freshness("(d) from the Kafka send", fresh)
        figures["freshness_from_kafka_send"] = fresh
    return figures


async def _from_ingest(
    arguments: argparse.Namespace, url: str, prefix: str
) -> dict[str, object]:
    names = Run(Infra(arguments.bootstrap, url), prefix + "i", HERE / "logs")
    settings = _settings(
        url, arguments.bootstrap, names.prefix, names.schema("metrics")
    ).model_copy(update={"gauge_refresh_seconds": arguments.gauge_refresh})
    feed = Feed(arguments.rate, arguments.freshness_seconds)
    report = await through_ingest.run(names, settings, feed)
    return report | {"gauge_refresh_seconds": arguments.gauge_refresh}


async def _from_kafka_send(
    arguments: argparse.Namespace, url: str, prefix: str
) -> dict[str, object]:
    fresh_settings = _settings(
        url, arguments.bootstrap, prefix + "f", f"{prefix}_fresh"
    ).model_copy(update={"gauge_refresh_seconds": arguments.gauge_refresh})
    await ensure_topics(fresh_settings.kafka, [prefix + "f." + t for t in topics.ALL])
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    latencies = await freshness(
        fresh_settings, dsn, arguments.rate, arguments.freshness_seconds
    )
    return {
        "measured_from": "the producer's send of each ledger fact to Kafka",
        "rate_per_second": arguments.rate,
        "seconds": arguments.freshness_seconds,
        "gauge_refresh_seconds": arguments.gauge_refresh,
        "facts_timed": len(latencies),
        "latency": summary([1000 * latency for latency in latencies]),
    }


def _print_freshness(label: str, figures: dict[str, Any]) -> None:
    latency = figures["latency"]
    count = figures.get("payments_timed", figures.get("facts_timed"))
    rate = figures.get("achieved_events_per_second", figures["rate_per_second"])
    print(
        f"{label}: {count:,} timed at {rate:,.0f} events/s: p50 {latency['p50_ms']}"
        f" / p90 {latency['p90_ms']} / p99 {latency['p99_ms']}"
        f" / max {latency['max_ms']} ms",
        flush=True,
    )


async def main(arguments: argparse.Namespace) -> dict[str, object]:
    url = arguments.database_url
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    settings = _settings(url, arguments.bootstrap, prefix, f"{prefix}_metrics")
    await ensure_topics(settings.kafka, [prefix + "." + t for t in topics.ALL])

    generated = list(billing_events(arguments.events))
    records = [_encode(event) for _, event in generated]
    topic = prefix + "." + topics.LEDGER
    produced = await produce_all(arguments.bootstrap, topic, records)
    count = len(records)
    print(f"produced {count} events in {produced:.1f} s", flush=True)

    figures: dict[str, object] = {
        "events": count,
        "invoices": sum(1 for kind, _ in generated if kind == "balance"),
        "produce_seconds": round(produced, 2),
    }
    figures |= await consume_figures(
        arguments.bootstrap, settings, count, arguments.repeats
    )
    figures |= await answer_figures(settings, dsn, generated)
    figures |= await freshness_figures(arguments, url, prefix)
    schemas = [f"{prefix}_{n}" for n in ("rebuild", "looped", "batch", "fresh")]
    await drop_schemas(url, *schemas)
    await delete_topics(arguments.bootstrap, prefix + ".", prefix + "f.")
    return figures


@contextlib.contextmanager
def infrastructure(arguments: argparse.Namespace) -> Iterator[None]:
    """The broker and server the arguments name, or private ones for this run."""
    if arguments.bootstrap and arguments.database_url:
        yield
        return
    # Run as a script, the repository root is not on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.infra import start_kafka, start_postgres

    state = Path(tempfile.mkdtemp(prefix="arbor-bench-metrics-"))
    # PostgreSQL may run as an unprivileged user, who must reach its data folder.
    state.chmod(0o755)
    kafka = start_kafka(state / "kafka")
    try:
        postgres = start_postgres(state / "postgres")
        try:
            arguments.bootstrap, arguments.database_url = kafka.bootstrap, postgres.url
            yield
        finally:
            postgres.stop()
    finally:
        kafka.stop()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="raw consume and rebuild pairs to measure; the median pair is reported",
    )
    parser.add_argument("--rate", type=int, default=1_000, help="(d): events/s")
    parser.add_argument("--freshness-seconds", type=float, default=20.0)
    parser.add_argument(
        "--freshness-from",
        choices=["ingest", "kafka", "both"],
        default="ingest",
        help="(d) from ingest's acceptance of a payment, or from the Kafka send of a "
        "ledger fact (the service alone), or both",
    )
    parser.add_argument(
        "--gauge-refresh",
        type=float,
        default=15.0,
        help="seconds between gauge recomputations during the freshness run",
    )
    parser.add_argument(
        "--bootstrap", default=os.environ.get("ARBOR_TEST_KAFKA_BOOTSTRAP", "")
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("ARBOR_TEST_DATABASE_URL", "")
    )
    options = parser.parse_args()
    started = datetime.now(UTC)
    with infrastructure(options):
        result = asyncio.run(main(options))
    result = {
        "measured_at": started.isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "command": " ".join(sys.argv[1:]),
    } | result
    write_results(HERE, result)
    print(json.dumps(result, indent=2))
