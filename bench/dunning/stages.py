"""Where the time between a payment's POST and its cancellation went.

Two sources besides the benchmark's own clocks: the broker's record timestamps
(``bench.common.produced_at``), and dunning's Prometheus histograms, read before and
after the timed phase.
"""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


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
