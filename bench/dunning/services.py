"""Ingest and dunning as real processes, configured as the test suite does."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from arbor_shared.local_issuer import AUDIENCE, ISSUER, LocalIssuer
from bench.common import Infra
from bench.dunning.publisher import KEY_ID, SECRET
from bench.dunning.watch import plain_url
from tests.e2e.processes import ServiceProcess, free_port

PARTITIONS = 3
PLAN_TIMEOUT_SECONDS = 900.0


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


def dunning_process(
    run: Run, issuer: LocalIssuer, max_poll_records: int
) -> ServiceProcess:
    port = free_port()
    env = run.env("dunning", port, issuer) | {
        "ARBOR_DUNNING_KAFKA__MAX_POLL_RECORDS": str(max_poll_records),
        "ARBOR_DUNNING_SMTP_HOST": "127.0.0.1",
        "ARBOR_DUNNING_SMTP_PORT": "9",
        "ARBOR_DUNNING_MAIL_FROM": "collections@arbor.example",
        "ARBOR_DUNNING_WEBHOOK_URL": "http://127.0.0.1:9/send",
        "ARBOR_DUNNING_WEBHOOK_SECRET": "bench-only-webhook-secret",
    }
    return ServiceProcess("arbor_dunning", env, port, run.logs / "dunning.log")


def pid(service: ServiceProcess) -> int:
    assert service.process is not None
    return service.process.pid


async def wait_planned(names: Run, invoices: int) -> None:
    """Return once every invoice has planned steps in dunning's schema."""
    query = (
        f'SELECT count(DISTINCT invoice_id) FROM "{names.schema("dunning")}".steps '
        "WHERE state = 'planned'"
    )
    connection = await asyncpg.connect(plain_url(names.infra.database_url))
    deadline = time.monotonic() + PLAN_TIMEOUT_SECONDS
    try:
        while (planned := await connection.fetchval(query)) < invoices:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {planned} of {invoices} invoices planned")
            await asyncio.sleep(0.5)
    finally:
        await connection.close()
    # Let the relays finish publishing what planning staged (ReminderScheduled).
    await asyncio.sleep(2)
