"""The whole system, end to end: five services, simulated time, mail, Prometheus.

One running system serves every test in this module: a simulated company is fed
through ingest first, then each test follows its own customers through the pipeline.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from arbor_cli.publisher import IngestPublisher
from arbor_cli.simulator import Simulation
from arbor_shared import topics
from arbor_shared.local_issuer import LocalIssuer
from tests.conftest import Namespace
from tests.deploy.prometheus import (
    DASHBOARD_FILES,
    PanelQuery,
    Target,
    load,
    panel_queries,
    running_prometheus,
    substitute,
    variables,
)
from tests.e2e.system import KEY_ID, SECRET, System, running_system
from tests.infra import KafkaHandle, PostgresHandle
from tests.support import eventually, produce

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
async def system(
    kafka: KafkaHandle,
    postgres: PostgresHandle,
    issuer: LocalIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[System]:
    namespace = Namespace(f"t{uuid.uuid4().hex[:10]}", kafka, postgres, issuer)
    with running_system(namespace, tmp_path_factory.mktemp("system")) as running:
        for service in running.services.values():
            await service.wait_ready()
        await _feed_simulated_company(running)
        yield running


async def _feed_simulated_company(system: System) -> None:
    # Two months of a small company, flat out; the simulation stops on 2025-03-01.
    simulation = Simulation(seed=5, customers=120, start=date(2025, 1, 1), months=2)
    async with httpx.AsyncClient(base_url=system.url("ingest"), timeout=60) as http:
        publisher = IngestPublisher(http, key_id=KEY_ID, secret=SECRET)
        stats = await publisher.publish(simulation.events())
    assert not stats.rejected, stats.rejected[:3]


def _customer(customer_id: str, email: str) -> dict[str, Any]:
    return {
        "id": f"{customer_id}-created",
        "type": "CustomerCreated",
        "data": {
            "customer_id": customer_id,
            "name": f"Customer {customer_id}",
            "email": email,
            "country": "DE",
            "time_zone": "Europe/Berlin",
            "currency": "EUR",
            "started_on": "2024-01-01",
        },
    }


def _invoice(
    customer_id: str, invoice_id: str, issued: str, due: str
) -> dict[str, Any]:
    return {
        "id": f"{invoice_id}-issued",
        "type": "InvoiceIssued",
        "data": {
            "customer_id": customer_id,
            "invoice_id": invoice_id,
            "currency": "EUR",
            "amount_minor": 50_000,
            "issue_date": issued,
            "due_date": due,
            "issued_at": f"{issued}T09:00:00+01:00",
        },
    }


def _payment(customer_id: str, invoice_id: str, at: str) -> dict[str, Any]:
    return {
        "id": f"{invoice_id}-paid",
        "type": "PaymentReceived",
        "data": {
            "customer_id": customer_id,
            "payment_id": f"{invoice_id}-payment",
            "currency": "EUR",
            "amount_minor": 50_000,
            "received_at": at,
            "allocations": [{"invoice_id": invoice_id, "amount_minor": 50_000}],
        },
    }


async def _days(system: System, first: int, last: int, month: int = 3) -> None:
    for day in range(first, last + 1):
        await system.tick(f"2025-{month:02d}-{day:02d}T12:00:00+00:00")


async def _dunning_of(
    system: System, issuer: LocalIssuer, customer_id: str
) -> dict[str, Any]:
    token = issuer.mint("ops", roles=("operator",))
    async with httpx.AsyncClient(base_url=system.url("dunning"), timeout=10) as http:
        response = await http.get(
            f"/v1/customers/{customer_id}/dunning",
            headers={"Authorization": f"Bearer {token}"},
        )
    if response.status_code == 404:
        return {}
    response.raise_for_status()
    view: dict[str, Any] = response.json()
    return view


async def _planned(
    system: System, issuer: LocalIssuer, customer_id: str, invoice_id: str
) -> None:
    # Simulated time moves only once dunning has seen the invoice: across topics,
    # Kafka promises no order, and a tick could otherwise overtake the invoice.
    async def planned() -> bool:
        view = await _dunning_of(system, issuer, customer_id)
        return any(a["invoice_id"] == invoice_id for a in view.get("upcoming", []))

    await eventually(planned, timeout=60)


async def test_overdue_invoice_is_emailed_and_a_payment_through_ingest_stops_the_rest(
    system: System, issuer: LocalIssuer
) -> None:
    await system.publish(
        _customer("cus-e2e-a", "a@example.test"),
        _invoice("cus-e2e-a", "inv-a-1", "2025-03-01", "2025-03-10"),
    )
    await _planned(system, issuer, "cus-e2e-a", "inv-a-1")
    # A week past the due date: the courtesy, due-date and plan-offer e-mails.
    await _days(system, 2, 17)

    async def reminded_past_due() -> bool:
        view = await _dunning_of(system, issuer, "cus-e2e-a")
        sent = {a["step"] for a in view.get("sent", []) if a["invoice_id"] == "inv-a-1"}
        mails = [
            m
            for m in system.mailbox.to("a@example.test")
            if "INV-A-1" in str(m["Subject"]).upper() or "inv-a-1" in m.get_content()
        ]
        return "plan_offer" in sent and len(mails) == len(sent)

    await eventually(reminded_past_due, timeout=60)
    await system.publish(_payment("cus-e2e-a", "inv-a-1", "2025-03-18T10:00:00+01:00"))
    await _days(system, 18, 18)

    async def stopped_because_settled() -> dict[str, Any] | None:
        view = await _dunning_of(system, issuer, "cus-e2e-a")
        reasons = {a.get("cancel_reason") for a in view.get("stopped", [])}
        return view if "settled" in reasons and not view["upcoming"] else None

    await eventually(stopped_because_settled, timeout=60)
    mails_at_payment = len(system.mailbox.to("a@example.test"))
    await _days(system, 19, 31)
    view = await _dunning_of(system, issuer, "cus-e2e-a")

    assert not view["upcoming"]
    assert len(system.mailbox.to("a@example.test")) == mails_at_payment


async def test_dispute_filed_in_the_portal_stops_the_next_reminder(
    system: System, issuer: LocalIssuer
) -> None:
    await system.publish(
        _customer("cus-e2e-b", "b@example.test"),
        _customer("cus-e2e-c", "c@example.test"),
        _invoice("cus-e2e-b", "inv-b-1", "2025-03-14", "2025-04-10"),
        _invoice("cus-e2e-c", "inv-c-1", "2025-03-14", "2025-04-10"),
    )
    await _planned(system, issuer, "cus-e2e-b", "inv-b-1")
    await _planned(system, issuer, "cus-e2e-c", "inv-c-1")
    portal = await _portal_client(
        system, issuer, subject="user-b", customer="cus-e2e-b"
    )
    async with portal:
        await eventually(lambda: _visible(portal, "/v1/invoices/inv-b-1"), timeout=60)
        response = await portal.post(
            "/v1/invoices/inv-b-1/disputes",
            json={"amount_minor": 20_000, "reason": "Two pallets never arrived"},
        )
        assert response.status_code == 201, response.text

    async def paused_for_dispute() -> bool:
        # A dispute pauses the pending steps: they stay upcoming, held by its reason.
        view = await _dunning_of(system, issuer, "cus-e2e-b")
        pending = [a for a in view.get("upcoming", []) if a["invoice_id"] == "inv-b-1"]
        return bool(pending) and all(
            a["state"] == "paused" and a["cancel_reason"] == "disputed" for a in pending
        )

    await eventually(paused_for_dispute, timeout=60)
    # Through Monday 14 April: days pass faster than the scheduler's tick, so the
    # twin's missed steps catch up as one reminder on the next business morning.
    await _days(system, 1, 15, month=4)
    # The undisputed twin invoice is reminded on the same days: once its e-mail is
    # in, the disputed one would have been too.
    await eventually(lambda: _has_mail(system, "c@example.test"), timeout=60)

    assert system.mailbox.to("b@example.test") == []


async def test_payment_through_ingest_shows_in_the_portal_history(
    system: System, issuer: LocalIssuer
) -> None:
    await system.publish(
        _customer("cus-e2e-d", "d@example.test"),
        _invoice("cus-e2e-d", "inv-d-1", "2025-04-12", "2025-05-12"),
        _payment("cus-e2e-d", "inv-d-1", "2025-04-12T15:00:00+02:00"),
    )
    portal = await _portal_client(
        system, issuer, subject="user-d", customer="cus-e2e-d"
    )
    async with portal:

        async def listed() -> list[dict[str, Any]] | None:
            response = await portal.get("/v1/payments")
            if response.status_code != 200:
                return None
            payments: list[dict[str, Any]] = response.json()["items"]
            return payments or None

        payments = await eventually(listed, timeout=60)
    assert [p["id"] for p in payments] == ["inv-d-1-payment"]


async def _portal_client(
    system: System, issuer: LocalIssuer, *, subject: str, customer: str
) -> httpx.AsyncClient:
    operator = issuer.mint("ops", roles=("operator",))
    async with httpx.AsyncClient(base_url=system.url("portal-api"), timeout=10) as ops:
        linked = await ops.post(
            "/v1/ops/identities",
            json={"subject": subject, "customer_id": customer},
            headers={"Authorization": f"Bearer {operator}"},
        )
    assert linked.status_code in (200, 201), linked.text
    token = issuer.mint(subject)
    return httpx.AsyncClient(
        base_url=system.url("portal-api"),
        timeout=10,
        headers={"Authorization": f"Bearer {token}"},
    )


async def _visible(client: httpx.AsyncClient, path: str) -> bool:
    return (await client.get(path)).status_code == 200


async def _has_mail(system: System, address: str) -> bool:
    return bool(system.mailbox.to(address))


@pytest.fixture(scope="module")
async def prometheus_live(
    system: System, kafka: KafkaHandle, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Any]:
    # One malformed record, so the dead-letter panels have something to show.
    namespace = system.services["ingest"].env["ARBOR_INGEST_KAFKA__TOPIC_PREFIX"]
    await produce(kafka.bootstrap, f"{namespace}.{topics.LEDGER}", [(b"x", b"{", [])])
    targets = [
        Target(name, f"127.0.0.1:{process.port}")
        for name, process in system.services.items()
    ]
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), targets) as server:
        yield server


def _live_values(server: Any, dashboard: Path) -> dict[str, str]:
    """What Grafana selects on opening: "All" where offered, else the first value."""
    values: dict[str, str] = {}
    for variable in variables(load(dashboard)):
        if variable.get("includeAll"):
            values[variable["name"]] = variable["allValue"]
            continue
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["definition"])
        assert match is not None
        selector, label = match.groups()
        answer = server.get(f"/api/v1/label/{label}/values", [("match[]", selector)])
        known = sorted(answer["data"])
        preferred = [v for v in ("EUR",) if v in known]
        values[variable["name"]] = (preferred or known or [""])[0]
    return values


@pytest.mark.parametrize("query", panel_queries(), ids=lambda q: q.id)
async def test_dashboard_panel_returns_data_from_the_running_system(
    prometheus_live: Any, query: PanelQuery
) -> None:
    (dashboard,) = [p for p in DASHBOARD_FILES if p.stem == query.dashboard]
    expr = substitute(query.expr, _live_values(prometheus_live, dashboard))

    async def answered() -> dict[str, Any] | None:
        answer: dict[str, Any] = prometheus_live.query(expr)
        assert answer["status"] == "success", answer.get("error")
        return answer if answer["data"]["result"] else None

    await eventually(answered, timeout=30)
