"""The steady load of (d) from ingest's acceptance: batches a billing system sends.

``rate`` events a second go to ``POST /v1/events:batch`` as batches of
``BATCH_EVENTS``, each on its own task so that a slow answer never delays the next.
A batch holds a fifth new customers, two fifths their invoices (two each) and two
fifths payments, each settling in full an invoice issued a second earlier (or at
set-up, for the first second's payments).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.billing import customer, invoice, payment, signed, submission

BATCH_EVENTS = 50
CUSTOMERS_PER_BATCH = BATCH_EVENTS // 5
INVOICES_PER_BATCH = 2 * CUSTOMERS_PER_BATCH
WARMUP_SECONDS = 3.0


@dataclass(frozen=True)
class Feed:
    """Events a second for ``seconds``, after ``warmup`` seconds left out of it.

    A freshly started ingest answers its first requests slowly (database pool,
    first use of every code path); a deployed one has long been warm.
    """

    rate: float
    seconds: float
    warmup: float = WARMUP_SECONDS

    @property
    def batches_per_second(self) -> float:
        return self.rate / BATCH_EVENTS

    @property
    def warmup_batches(self) -> int:
        return round(self.warmup * self.batches_per_second)

    @property
    def batches(self) -> int:
        return self.warmup_batches + round(self.seconds * self.batches_per_second)

    @property
    def lag(self) -> int:
        """Batches between an invoice's issue and its payment: about a second."""
        return max(1, round(self.batches_per_second))


@dataclass
class Answers:
    """What ingest answered: batch sends and answers, and each payment's 200."""

    sent: dict[int, float] = field(default_factory=dict)
    answered: dict[int, float] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    items: Counter[str] = field(default_factory=Counter)
    accepted: dict[str, float] = field(default_factory=dict)
    # Wall time minus perf_counter: turns the broker's timestamps into the latter.
    wall_offset: float = field(
        default_factory=lambda: time.time() - time.perf_counter()
    )


def accounts(first: int, count: int, now: datetime) -> list[dict[str, Any]]:
    """Customers ``first`` … ``first + count - 1``, each with its two invoices."""
    items = []
    for c in range(first, first + count):
        items.append(submission(f"cus-{c}", customer(c)))
        items += [
            submission(f"iss-{i}", invoice(i, now, customer=c))
            for i in (2 * c, 2 * c + 1)
        ]
    return items


def _batch(k: int, lag: int) -> list[dict[str, Any]]:
    """Batch ``k``: new accounts, and the payments of those issued ``lag`` before."""
    first = INVOICES_PER_BATCH * k
    payments = [
        submission(f"pay-{i}", payment(i, customer=i // 2))
        for i in range(first, first + INVOICES_PER_BATCH)
    ]
    first_customer = CUSTOMERS_PER_BATCH * (lag + k)
    fresh = accounts(first_customer, CUSTOMERS_PER_BATCH, datetime.now(UTC))
    return fresh + payments


async def _post(client: httpx.AsyncClient, k: int, feed: Feed, out: Answers) -> None:
    body, headers = signed({"events": _batch(k, feed.lag)})
    out.sent[k] = time.perf_counter()
    try:
        response = await client.post("/v1/events:batch", content=body, headers=headers)
    except httpx.TransportError as exc:
        out.statuses[type(exc).__name__] += 1
        return
    answered = time.perf_counter()
    out.statuses[str(response.status_code)] += 1
    if response.status_code != 200:
        return
    out.answered[k] = answered
    for result in response.json()["results"]:
        out.items[result["status"]] += 1
        if result["status"] == "accepted" and result["id"].startswith("pay-"):
            out.accepted["inv-" + result["id"].removeprefix("pay-")] = answered


async def send_all(url: str, feed: Feed) -> Answers:
    """Send every batch at the steady rate; return once ingest answered them all."""
    out = Answers()
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        tasks = []
        started = time.perf_counter()
        for k in range(feed.batches):
            due = started + k / feed.batches_per_second
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(_post(client, k, feed, out)))
        await asyncio.gather(*tasks)
    return out
