"""The billing system the benchmarks play when they go through ingest.

Ingest runs as a real ``python -m arbor_ingest serve`` process, configured as the
test suite configures it, with one publisher key; the events it is sent are signed
with that key as a billing system signs them.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
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
from arbor_shared.local_issuer import AUDIENCE, ISSUER, LocalIssuer
from bench.common import Infra
from tests.e2e.processes import ServiceProcess, free_port

PARTITIONS = 3
KEY_ID = "bench-billing"
SECRET = secrets.token_hex(32)
SETUP_BATCH = 1000


@dataclass(frozen=True)
class Run:
    """Names private to one measured run."""

    infra: Infra
    prefix: str
    logs: Path

    def schema(self, service: str) -> str:
        return f"{self.prefix}_{service}"

    def env(self, service: str, port: int, issuer: LocalIssuer) -> dict[str, str]:
        """What ``tests.conftest.Namespace.env`` gives a service, for this run."""
        p = f"ARBOR_{service.upper()}_"
        return {
            f"{p}DATABASE_URL": self.infra.database_url,
            f"{p}DATABASE_SCHEMA": self.schema(service),
            f"{p}KAFKA__BOOTSTRAP": self.infra.bootstrap,
            f"{p}KAFKA__TOPIC_PREFIX": self.prefix,
            f"{p}KAFKA__TOPIC_PARTITIONS": str(PARTITIONS),
            f"{p}OIDC_ISSUER": ISSUER,
            f"{p}OIDC_AUDIENCE": AUDIENCE,
            f"{p}OIDC_JWKS_URL": issuer.jwks_url,
            f"{p}HTTP_PORT": str(port),
        }


def ingest_process(run: Run, issuer: LocalIssuer, rate: float) -> ServiceProcess:
    """Ingest taking ``rate`` requests/s from the benchmark's publisher key."""
    port = free_port()
    publisher = {"key_id": KEY_ID, "secret": SECRET, "scopes": ["events:write"]}
    env = run.env("ingest", port, issuer) | {
        "ARBOR_INGEST_PUBLISHERS": json.dumps([publisher]),
        # The per-publisher limit (50/s by default) would throttle the faster runs;
        # the benchmark measures the pipeline, not the limiter.
        "ARBOR_INGEST_RATE_PER_SECOND": str(max(4 * rate, 1000)),
        "ARBOR_INGEST_RATE_BURST": str(int(max(4 * rate, 1000))),
    }
    return ServiceProcess("arbor_ingest", env, port, run.logs / "ingest.log")


def submission(event_id: str, data: EventData) -> dict[str, Any]:
    """One item of a POST to ingest."""
    return {
        "id": event_id,
        "type": data.event_type,
        "data": data.model_dump(mode="json"),
    }


def signed(payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The body and the headers of a POST signed with the benchmark's key."""
    body = orjson.dumps(payload)
    headers = sign(body, KEY_ID, SECRET, datetime.now(UTC))
    headers["Content-Type"] = "application/json"
    return body, headers


async def post_accepted(
    client: httpx.AsyncClient, events: list[dict[str, Any]]
) -> None:
    """POST ``events`` to the batch route; fail unless ingest accepted every one."""
    for start in range(0, len(events), SETUP_BATCH):
        chunk = events[start : start + SETUP_BATCH]
        body, headers = signed({"events": chunk})
        response = await client.post("/v1/events:batch", content=body, headers=headers)
        response.raise_for_status()
        if response.json()["accepted"] != len(chunk):
            raise RuntimeError(f"ingest refused set-up events: {response.text}")


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


def invoice(n: int, now: datetime, *, customer: int | None = None) -> InvoiceIssued:
    """Invoice ``n``, of customer ``n`` unless another is named, due in a month."""
    # Every step of a dunning ladder lies ahead, so a scheduler on the wall clock
    # has nothing to send while a benchmark runs.
    return InvoiceIssued(
        customer_id=f"cus-{n if customer is None else customer}",
        invoice_id=f"inv-{n}",
        currency="EUR",
        amount_minor=_amount(n),
        issue_date=now.date(),
        due_date=now.date() + timedelta(days=30),
        issued_at=now,
    )


def payment(n: int, *, customer: int | None = None) -> PaymentReceived:
    """Payment ``n``, received now, settling invoice ``n`` in full."""
    return PaymentReceived(
        customer_id=f"cus-{n if customer is None else customer}",
        payment_id=f"pay-{n}",
        currency="EUR",
        amount_minor=_amount(n),
        received_at=datetime.now(UTC),
        allocations=(Allocation(invoice_id=f"inv-{n}", amount_minor=_amount(n)),),
    )
