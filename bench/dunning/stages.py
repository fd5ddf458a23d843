"""Where the time between a payment's POST and its cancellation went.

Two sources besides the benchmark's own clocks: the broker, whose record timestamps
are set by the relay's producer when it takes each record (the same machine's wall
clock), and dunning's Prometheus histograms, read before and after the timed phase.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

_CANCELLING = {b"InvoiceBalanceChanged", b"InvoiceSettled"}


async def produced_at(bootstrap: str, topic: str, partitions: int) -> dict[str, float]:
    """Wall time (s) each payment's first ledger fact was handed to the producer.

    Keyed by invoice id; only facts caused by a payment of the benchmark (their
    causation id is ``pay-…``) count.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        return await _read_to_end(consumer, await consumer.end_offsets(parts))
    finally:
        await consumer.stop()


async def _read_to_end(
    consumer: AIOKafkaConsumer, ends: Mapping[TopicPartition, int]
) -> dict[str, float]:
    first: dict[str, float] = {}
    while await _behind(consumer, ends):
        batch = await consumer.getmany(timeout_ms=1000)
        for record in (r for records in batch.values() for r in records):
            headers = dict(record.headers)
            if headers.get("ce_type") not in _CANCELLING:
                continue
            if not headers.get("ce_causationid", b"").startswith(b"pay-"):
                continue
            invoice = str(orjson.loads(record.value)["invoice_id"])
            moment = record.timestamp / 1000
            first[invoice] = min(first.get(invoice, moment), moment)
    return first


async def _behind(
    consumer: AIOKafkaConsumer, ends: Mapping[TopicPartition, int]
) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


async def scrape(url: str) -> Samples:
    """Every sample a service's ``/metrics`` shows, by name and labels."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{url}/metrics")
    response.raise_for_status()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def histogram_delta(
    before: Samples, after: Samples, name: str, **labels: str
) -> tuple[float, float]:
    """(count, mean in ms) of a histogram's observations between two scrapes."""
    wanted = set(labels.items())
    totals = dict.fromkeys(("_count", "_sum"), 0.0)
    for suffix in totals:
        for key, value in after.items():
            sample, sample_labels = key
            if sample.endswith(name + suffix) and wanted <= set(sample_labels):
                totals[suffix] += value - before.get(key, 0.0)
    count = totals["_count"]
    return count, round(1000 * totals["_sum"] / count, 2) if count else float("nan")
