"""Dunning as a real process beside ingest (``bench.billing``), as the tests run it."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from arbor_shared.local_issuer import LocalIssuer
from bench.billing import Run
from bench.common import plain_url
from tests.e2e.processes import ServiceProcess, free_port

PLAN_TIMEOUT_SECONDS = 900.0


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
