"""The real path: a signed payment POSTed to ingest → its invoice's steps cancelled.

Ingest and dunning run as ``python -m … serve`` processes on a fresh topic prefix
and fresh schemas. Customers and invoices go in through ingest's batch route, so
ingest's ledger knows them, and the clock starts only once dunning has planned
steps for every invoice. Then one ``PaymentReceived`` per invoice is POSTed to
``/v1/events`` at a steady rate, each on its own task so that a slow answer never
delays the next payment. Latency runs from just before the POST to the commit of
the transaction that cancels the invoice's steps (see ``watch``).
"""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from arbor_shared import topics
from arbor_shared.local_issuer import LocalIssuer
from bench import cpu
from bench.billing import PARTITIONS, Run, ingest_process
from bench.common import (
    Infra,
    delete_topics,
    drop_schemas,
    load_samples,
    produced_at,
    summary,
)
from bench.dunning.publisher import Load, Payments, pay_all, set_up
from bench.dunning.services import dunning_process, pid, wait_planned
from bench.dunning.stages import Samples, histogram_delta, scrape
from bench.dunning.watch import watch_cancellations
from tests.e2e.processes import ServiceProcess

DRAIN_TIMEOUT_SECONDS = 120.0


async def run(infra: Infra, load: Load, folder: Path) -> dict[str, object]:
    """Start both services, plan the invoices, pay them at the load's rate, time it.

    The services' logs go to ``folder``; the issuer's key to a scratch folder.
    """
    names = Run(infra, f"bd{secrets.token_hex(4)}", folder)
    with tempfile.TemporaryDirectory(prefix="arbor-bench-issuer-") as scratch:
        issuer = LocalIssuer(Path(scratch))
        return await _run(names, issuer, load)


async def _run(names: Run, issuer: LocalIssuer, load: Load) -> dict[str, object]:
    infra = names.infra
    ingest = ingest_process(names, issuer, load.rate)
    dunning = dunning_process(names, issuer, load.max_poll_records)
    try:
        for service in (ingest, dunning):
            service.migrate()
            service.start()
        await ingest.wait_ready()
        await dunning.wait_ready()
        await set_up(ingest.url, load.total)
        await wait_planned(names, load.total)
        return await _measure(names, ingest, dunning, load)
    finally:
        ingest.stop()
        dunning.stop()
        schemas = (names.schema("ingest"), names.schema("dunning"))
        await drop_schemas(infra.database_url, *schemas)
        await delete_topics(infra.bootstrap, f"{names.prefix}.")


@dataclass
class _Observed:
    """Everything one timed phase left behind."""

    warm: Payments
    timed: Payments
    seen: dict[str, float]
    complete: bool
    published: dict[str, float]
    dunning_figures: dict[str, float]
    cpu: dict[str, float | dict[str, float]]
    load: list[float]


async def _measure(
    names: Run, ingest: ServiceProcess, dunning: ServiceProcess, load: Load
) -> dict[str, object]:
    watch = await watch_cancellations(
        names.infra.database_url, names.schema("dunning"), load.total
    )
    pids = {"ingest": pid(ingest), "dunning": pid(dunning), "bench": os.getpid()}
    before, cpu_before = await scrape(dunning.url), cpu.snapshot(pids)
    async with load_samples() as samples:
        warm, timed = await pay_all(ingest.url, load)
        complete = await watch.wait(DRAIN_TIMEOUT_SECONDS)
    cpu_after, after = cpu.snapshot(pids), await scrape(dunning.url)
    await watch.close()
    ledger = f"{names.prefix}.{topics.LEDGER}"
    observed = _Observed(
        warm,
        timed,
        watch.seen_at,
        complete,
        await produced_at(names.infra.bootstrap, ledger, PARTITIONS),
        _dunning_figures(before, after),
        cpu.spent(cpu_before, cpu_after, load.total),
        samples,
    )
    return _report(load, observed)


def _report(load: Load, observed: _Observed) -> dict[str, object]:
    timed, seen = observed.timed, observed.seen
    return {
        "mode": "ingest",
        "invoices": load.invoices,
        "rate_per_second": load.rate,
        "achieved_rate_per_second": round(load.total / timed.send_seconds, 1),
        "max_poll_records": load.max_poll_records,
        "payments_sent": len(timed.sent_perf),
        "post_statuses": dict(timed.statuses),
        "payments_retried": len(timed.retried),
        "payments_accepted": len(timed.answered_perf),
        "cancellations_observed": len(set(timed.sent_perf) & set(seen)),
        "complete": observed.complete,
        "latency": summary(_latencies(timed, seen)),
        "warmup_payments": load.warmup,
        "warmup_latency": summary(_latencies(observed.warm, seen)),
        "stages": _stages(timed, observed.published, seen),
        "dunning_during_payments": observed.dunning_figures,
        "cpu": observed.cpu,
        "load_average_1m_during": {
            "min": min(observed.load, default=float("nan")),
            "max": max(observed.load, default=float("nan")),
        },
    }


def _latencies(payments: Payments, seen: dict[str, float]) -> list[float]:
    sent = payments.sent_perf
    return [(seen[i] - sent[i]) * 1000 for i in sent if i in seen]


def _stages(
    payments: Payments, published: dict[str, float], seen: dict[str, float]
) -> dict[str, dict[str, float]]:
    """The legs: ingest's answer; POST to Kafka; Kafka to the cancelling commit.

    ``published`` is wall time, the rest ``perf_counter``; the Kafka moment is
    turned into the other clock through the wall time of the same payment's POST.
    """
    legs: dict[str, list[float]] = {
        "post_to_202": [],
        "post_to_kafka": [],
        "kafka_to_cancelled": [],
    }
    for invoice, sent in payments.sent_perf.items():
        answered = payments.answered_perf.get(invoice)
        out = published.get(invoice)
        done = seen.get(invoice)
        if answered is None or out is None or done is None:
            continue
        out_perf = sent + out - payments.sent_wall[invoice]
        legs["post_to_202"].append((answered - sent) * 1000)
        legs["post_to_kafka"].append((out_perf - sent) * 1000)
        legs["kafka_to_cancelled"].append((done - out_perf) * 1000)
    return {leg: summary(values) for leg, values in legs.items()}


def _dunning_figures(before: Samples, after: Samples) -> dict[str, float]:
    batches, batch_ms = histogram_delta(before, after, "batch_duration_seconds")
    figures = {"batches": batches, "batch_mean_ms": batch_ms}
    for event_type in ("InvoiceBalanceChanged", "InvoiceSettled"):
        _count, mean = histogram_delta(
            before, after, "handler_duration_seconds", event_type=event_type
        )
        figures[f"handler_{event_type}_mean_ms"] = mean
    return figures
