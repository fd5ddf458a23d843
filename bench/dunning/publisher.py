"""The benchmark as a billing system: signed events POSTed to ingest.

Set-up events go in batches; payments one per request, each on its own task at a
steady rate, retried as ``arbor_cli.publisher`` retries while ingest cannot take
them, so that a slow or refused answer never delays the next payment.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from bench.billing import (
    customer,
    invoice,
    payment,
    post_accepted,
    signed,
    submission,
)

# As arbor_cli.publisher: these answers mean "not taken, send again".
RETRYABLE = {429, 502, 503, 504}
RETRY_FIRST_SECONDS = 0.2
RETRY_MAX_SECONDS = 10.0
GIVE_UP_SECONDS = 120.0


@dataclass(frozen=True)
class Load:
    """How many payments, how fast; the first ``warmup`` are left out of the figures.

    A freshly started process answers its first requests slowly (database pool,
    first use of every code path); a deployed ingest has long been warm.
    """

    invoices: int
    rate: float
    warmup: int
    max_poll_records: int

    @property
    def total(self) -> int:
        return self.warmup + self.invoices


async def set_up(url: str, invoices: int) -> None:
    """Create customer ``n`` and its invoice ``n`` for each of ``invoices``."""
    now = datetime.now(UTC)
    events = [
        item
        for n in range(invoices)
        for item in (
            submission(f"cus-{n}", customer(n)),
            submission(f"iss-{n}", invoice(n, now)),
        )
    ]
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        await post_accepted(client, events)


@dataclass
class Payments:
    """What happened to each payment, by invoice id."""

    sent_perf: dict[str, float] = field(default_factory=dict)
    sent_wall: dict[str, float] = field(default_factory=dict)
    answered_perf: dict[str, float] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    retried: set[str] = field(default_factory=set)
    send_seconds: float = 0.0


async def _pay(client: httpx.AsyncClient, n: int, payments: Payments) -> None:
    """POST one payment as a publisher does: retried while ingest cannot take it.

    Its latency counts from the first attempt, so time spent refused is included.
    """
    payload = submission(f"pay-{n}", payment(n))
    invoice = f"inv-{n}"
    payments.sent_wall[invoice] = time.time()
    payments.sent_perf[invoice] = started = time.perf_counter()
    delay = RETRY_FIRST_SECONDS
    while True:
        body, headers = signed(payload)  # a retry is signed afresh
        outcome, again, wait = await _attempt(client, body, headers)
        payments.statuses[outcome] += 1
        if not again or time.perf_counter() - started > GIVE_UP_SECONDS:
            break
        payments.retried.add(invoice)
        await asyncio.sleep(wait if wait is not None else delay)
        delay = min(delay * 2, RETRY_MAX_SECONDS)
    if outcome == "202":
        payments.answered_perf[invoice] = time.perf_counter()


async def _attempt(
    client: httpx.AsyncClient, body: bytes, headers: dict[str, str]
) -> tuple[str, bool, float | None]:
    """(status code or error name, whether to retry, Retry-After if ingest sent it)."""
    try:
        response = await client.post("/v1/events", content=body, headers=headers)
    except httpx.TransportError as exc:
        # The payment may have been stored; a repeat of its id is a duplicate.
        return type(exc).__name__, True, None
    code = response.status_code
    after = response.headers.get("Retry-After")
    return str(code), code in RETRYABLE, float(after) if after else None


async def pay_all(url: str, load: Load) -> tuple[Payments, Payments]:
    """Pay every invoice at the steady rate: (warm-up payments, timed payments)."""
    warm, timed = Payments(), Payments()
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=500)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        tasks = []
        started = time.perf_counter()
        for n in range(load.total):
            await asyncio.sleep(max(0.0, started + n / load.rate - time.perf_counter()))
            payments = warm if n < load.warmup else timed
            tasks.append(asyncio.create_task(_pay(client, n, payments)))
        timed.send_seconds = time.perf_counter() - started
        await asyncio.gather(*tasks)
    return warm, timed
