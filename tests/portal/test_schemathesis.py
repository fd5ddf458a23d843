"""Schemathesis against the portal running in-process (uvicorn on a loopback port).

The app runs in its own thread and event loop with its real lifespan, so the suite
exercises the same stack a deployment does: token verification, the read model in
PostgreSQL and the outbox. Every response must be documented, match its schema and
never be a 5xx.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

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

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass
class Served:
    base_url: str
    customer_token: str
    operator_token: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _seed(settings: PortalSettings, subject: str, customer_id: str) -> None:
    """Objects with the ids the OpenAPI examples use, so examples hit real rows."""
    runtime = create_app(settings).state.runtime
    invoice_id = "inv-2024-0001"
    events: list[EventData] = [
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
    try:
        async with runtime.sessions() as session, session.begin():
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


@pytest.fixture(scope="module")
def served(
    kafka: KafkaHandle, postgres: PostgresHandle, issuer: LocalIssuer
) -> Iterator[Served]:
    namespace = Namespace(f"t{uuid.uuid4().hex[:10]}", kafka, postgres, issuer)
    port = _free_port()
    settings = service_settings(
        PortalSettings,
        namespace,
        "portal-api",
        http_port=port,
        consumers_enabled=False,
        rate_limit_per_second=10_000.0,
        rate_limit_burst=10_000,
    )
    subject = "idp|schemathesis"
    url = settings.database_url.get_secret_value()
    # Migrating and seeding run their own event loops, in a thread: the test
    # session's loop is idle while a synchronous fixture runs and must stay set.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(upgrade, MIGRATIONS, url, settings.database_schema).result()
        pool.submit(asyncio.run, _seed(settings, subject, "cus-0042")).result()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_config=None
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the portal did not start"
        time.sleep(0.05)
    yield Served(
        f"http://127.0.0.1:{port}",
        issuer.mint(subject),
        issuer.mint("ops-1", roles=("operator",)),
    )
    server.should_exit = True
    thread.join(timeout=30)


def _offline_settings() -> PortalSettings:
    # Only to render the OpenAPI document: nothing connects until the lifespan runs.
    return PortalSettings(
        database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none",
        database_schema="schema_only",
        kafka={"bootstrap": "127.0.0.1:1"},
        oidc_issuer="https://issuer.invalid",
        oidc_audience="arbor",
        oidc_jwks_url="file:///nonexistent",
    )


schema = schemathesis.openapi.from_dict(create_app(_offline_settings()).openapi())

FUZZ = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@schema.parametrize()
@FUZZ
def test_customer_api_never_fails_and_matches_its_schema(
    case: schemathesis.Case[Any], served: Served
) -> None:
    case.call_and_validate(
        base_url=served.base_url,
        headers={"Authorization": f"Bearer {served.customer_token}"},
        checks=CHECKS,
    )


@schema.include(path_regex="^/v1/ops").parametrize()
@FUZZ
def test_operations_api_never_fails_and_matches_its_schema(
    case: schemathesis.Case[Any], served: Served
) -> None:
    case.call_and_validate(
        base_url=served.base_url,
        headers={"Authorization": f"Bearer {served.operator_token}"},
        checks=CHECKS,
    )


def test_stateful_scenarios_never_fail_and_match_the_schema(served: Served) -> None:
    """Chains of calls linked by the ids one response hands to the next request."""
    headers = {"Authorization": f"Bearer {served.customer_token}"}

    class PortalMachine(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, object]:
            return {"base_url": served.base_url, "headers": headers}

        def validate_response(
            self,
            response: schemathesis.Response,
            case: schemathesis.Case[Any],
            additional_checks: object = None,
            **kwargs: object,
        ) -> None:
            case.validate_response(response, checks=CHECKS)

    PortalMachine.run(
        settings=settings(
            max_examples=30,
            stateful_step_count=6,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
