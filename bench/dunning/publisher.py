"""The benchmark as a billing system: signed events POSTed to ingest.

Set-up events go in batches; payments one per request, each on its own task at a
steady rate, retried as ``arbor_cli.publisher`` retries while ingest cannot take
them, so that a slow or refused answer never delays the next payment.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import orjson

from arbor_ingest.signing import sign
from arbor_shared.events import (
    Allocation,
    CustomerCreated,
    EventData,
    InvoiceIssued,
    PaymentReceived,
)

KEY_ID = "bench-billing"
SECRET = secrets.token_hex(32)
SETUP_BATCH = 1000
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


def _submission(event_id: str, data: EventData) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": data.event_type,
        "data": data.model_dump(mode="json"),
    }


def _signed(payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps(payload)
    headers = sign(body, KEY_ID, SECRET, datetime.now(UTC))
    headers["Content-Type"] = "application/json"
    return body, headers


def _amount(n: int) -> int:
    return 10_000 + n


def customer(n: int) -> CustomerCreated:
    """The benchmark's customer ``n``: in Berlin, billed in euros."""
    return CustomerCreated(
        customer_id=f"cus-{n}",
        name=f"Customer {n}",
        email=f"cus-{n}@example.com",
        country="DE",
        time_zone="Europe/Berlin",
        currency="EUR",
        started_on=date(2025, 1, 1),
    )


def _invoice(n: int, now: datetime) -> InvoiceIssued:
    # Due in a month: every step of the ladder lies ahead, so the scheduler (on
    # the wall clock, as deployed) has nothing to send while the benchmark runs.
    return InvoiceIssued(
        customer_id=f"cus-{n}",
        invoice_id=f"inv-{n}",
        currency="EUR",
        amount_minor=_amount(n),
        issue_date=now.date(),
        due_date=now.date() + timedelta(days=30),
        issued_at=now,
    )


def _payment(n: int) -> PaymentReceived:
    return PaymentReceived(
        customer_id=f"cus-{n}",
        payment_id=f"pay-{n}",
        currency="EUR",
        amount_minor=_amount(n),
        received_at=datetime.now(UTC),
        allocations=(Allocation(invoice_id=f"inv-{n}", amount_minor=_amount(n)),),
    )


async def set_up(url: str, invoices: int) -> None:
    now = datetime.now(UTC)
    events = [
        item
        for n in range(invoices)
        for item in (
            _submission(f"cus-{n}", customer(n)),
            _submission(f"iss-{n}", _invoice(n, now)),
        )
    ]
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        for start in range(0, len(events), SETUP_BATCH):
            body, headers = _signed({"events": events[start : start + SETUP_BATCH]})
            response = await client.post(
                "/v1/events:batch", content=body, headers=headers
            )
            response.raise_for_status()
            if response.json()["accepted"] != len(events[start : start + SETUP_BATCH]):
                raise RuntimeError(f"ingest refused set-up events: {response.text}")


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
    payload = _submission(f"pay-{n}", _payment(n))
    invoice = f"inv-{n}"
    payments.sent_wall[invoice] = time.time()
    payments.sent_perf[invoice] = started = time.perf_counter()
    delay = RETRY_FIRST_SECONDS
    while True:
        body, headers = _signed(payload)  # a retry is signed afresh
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
