"""The portal served over loopback for Schemathesis, with two seeded customers.

The app runs in its own thread and event loop with its real lifespan, so Schemathesis
exercises the same stack a deployment does: token verification, the read model in
PostgreSQL and the outbox.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from arbor_portal.bootstrap import MIGRATIONS, create_app
from arbor_portal.config import PortalSettings
from arbor_portal.handlers import HANDLERS, profile
from arbor_shared.db.migrations import upgrade
from arbor_shared.events import (
    Allocation,
    DisputeOpened,
    EventData,
    PaymentPlanRequested,
    PaymentReceived,
    PromiseToPayMade,
)
from arbor_shared.events.envelope import Envelope
from arbor_shared.kafka.consumer import Context
from arbor_shared.local_issuer import LocalIssuer
from tests.conftest import Namespace
from tests.infra import KafkaHandle, PostgresHandle
from tests.portal.conftest import NOW, ledger_balance
from tests.support import service_settings

OWNER_ACCOUNT = ("idp|schemathesis", "cus-0042")
"""Subject and customer of the account whose ids the OpenAPI examples use."""
PEER_ACCOUNT = ("idp|schemathesis-peer", "cus-0099")
"""Another customer, with objects of its own, who must never see the owner's."""


@dataclass
class Served:
    base_url: str
    owner_token: str
    peer_token: str
    operator_token: str


def offline_settings() -> PortalSettings:
    # Only to render the OpenAPI document: nothing connects until the lifespan runs.
    return PortalSettings(
        database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none",
        database_schema="schema_only",
        kafka={"bootstrap": "127.0.0.1:1"},
        oidc_issuer="https://issuer.invalid",
        oidc_audience="arbor",
        oidc_jwks_url="file:///nonexistent",
    )


def _owner_events(customer_id: str) -> list[EventData]:
    """Objects with the ids the OpenAPI examples use, so examples hit real rows."""
    invoice_id = "inv-2024-0001"
    return [
        ledger_balance(customer_id, invoice_id, 125_000, 25_000),
        PaymentReceived(
            customer_id=customer_id,
            payment_id="pay-881",
            currency="EUR",
            amount_minor=100_000,
            received_at=NOW,
            allocations=(Allocation(invoice_id=invoice_id, amount_minor=100_000),),
        ),
        DisputeOpened(
            customer_id=customer_id,
            dispute_id="dsp_5f0c",
            invoice_id=invoice_id,
            currency="EUR",
            amount_minor=1,
            reason="seed",
            opened_at=NOW,
        ),
        PromiseToPayMade(
            customer_id=customer_id,
            promise_id="ptp_77ab",
            invoice_id=invoice_id,
            currency="EUR",
            amount_minor=1,
            promised_date=NOW.date(),
            made_at=NOW,
        ),
        PaymentPlanRequested(
            customer_id=customer_id,
            request_id="ppr_19cd",
            invoice_id=invoice_id,
            installments=2,
            requested_at=NOW,
        ),
    ]


def _peer_events(customer_id: str) -> list[EventData]:
    # The peer's own invoice and payment: a list of the peer's invoices is then not
    # empty, so the object-level check can tell the owner's ids from shared ones.
    return [
        ledger_balance(customer_id, "inv-peer-0001", 80_000, 80_000),
        PaymentReceived(
            customer_id=customer_id,
            payment_id="pay-peer-1",
            currency="EUR",
            amount_minor=5_000,
            received_at=NOW,
        ),
    ]


async def _seed(settings: PortalSettings) -> None:
    runtime = create_app(settings).state.runtime
    accounts = [
        (OWNER_ACCOUNT, _owner_events(OWNER_ACCOUNT[1])),
        (PEER_ACCOUNT, _peer_events(PEER_ACCOUNT[1])),
    ]
    try:
        async with runtime.sessions() as session, session.begin():
            for (subject, customer_id), events in accounts:
                await profile.link_identity(
                    session,
                    runtime.clock,
                    subject=subject,
                    customer_id=customer_id,
                    operator="tests",
                )
                for event in events:
                    envelope = Envelope.for_data(event, source="tests", time=NOW)
                    ctx = Context(session, runtime.outbox, runtime.clock, envelope)
                    await HANDLERS[event.event_type](ctx, event)
    finally:
        await runtime.engine.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _settings(namespace: Namespace, port: int) -> PortalSettings:
    return service_settings(
        PortalSettings,
        namespace,
        "portal-api",
        http_port=port,
        consumers_enabled=False,
        rate_limit_per_second=10_000.0,
        rate_limit_burst=10_000,
    )


def _prepare(settings: PortalSettings) -> None:
    url = settings.database_url.get_secret_value()
    # Migrating and seeding run their own event loops, in a thread: the test
    # session's loop is idle while a synchronous fixture runs and must stay set.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(upgrade, MIGRATIONS, url, settings.database_schema).result()
        pool.submit(asyncio.run, _seed(settings)).result()


def _start(settings: PortalSettings) -> tuple[uvicorn.Server, threading.Thread]:
    app = create_app(settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=settings.http_port, log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the portal did not start"
        time.sleep(0.05)
    return server, thread


@contextmanager
def serve(
    kafka: KafkaHandle, postgres: PostgresHandle, issuer: LocalIssuer
) -> Iterator[Served]:
    """A migrated, seeded portal on a loopback port, until the block ends."""
    namespace = Namespace(f"t{uuid.uuid4().hex[:10]}", kafka, postgres, issuer)
    settings = _settings(namespace, _free_port())
    _prepare(settings)
    server, thread = _start(settings)
    try:
        yield Served(
            f"http://127.0.0.1:{settings.http_port}",
            issuer.mint(OWNER_ACCOUNT[0]),
            issuer.mint(PEER_ACCOUNT[0]),
            issuer.mint("ops-1", roles=("operator",)),
        )
    finally:
        server.should_exit = True
        thread.join(timeout=30)
