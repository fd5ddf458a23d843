"""An invoice and a payment through ingest move the KPI in metrics, in one trace."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from arbor_ingest.signing import sign
from arbor_shared.local_issuer import LocalIssuer
from tests.e2e.conftest import ServiceFactory
from tests.e2e.otlp import SpanStore, otlp_receiver
from tests.support import eventually

KEY_ID = "billing-engine"
SECRET = "test-only-secret-of-the-billing-engine-0001"
PUBLISHERS = json.dumps(
    [{"key_id": KEY_ID, "secret": SECRET, "scopes": ["events:write"]}]
)

INVOICE = {
    "type": "InvoiceIssued",
    "data": {
        "customer_id": "cus-e2e",
        "invoice_id": "inv-e2e-1",
        "currency": "EUR",
        "amount_minor": 120_000,
        "issue_date": "2024-03-01",
        "due_date": "2024-03-31",
        "issued_at": "2024-03-01T09:00:00+01:00",
    },
}
PAYMENT = {
    "type": "PaymentReceived",
    "data": {
        "customer_id": "cus-e2e",
        "payment_id": "pay-e2e-1",
        "currency": "EUR",
        "amount_minor": 120_000,
        "received_at": "2024-03-20T10:00:00+01:00",
        "allocations": [{"invoice_id": "inv-e2e-1", "amount_minor": 120_000}],
    },
}


async def test_payment_through_ingest_moves_on_time_rate_in_one_trace(
    service_process: ServiceFactory, issuer: LocalIssuer
) -> None:
    with otlp_receiver() as (collector, spans):
        ingest = service_process(
            "ingest", otlp_endpoint=collector, publishers=PUBLISHERS
        )
        metrics = service_process("metrics", otlp_endpoint=collector)
        ingest.start()
        metrics.start()
        await ingest.wait_ready()
        await metrics.wait_ready()
        operator = {
            "Authorization": f"Bearer {issuer.mint('ops', roles=('operator',))}"
        }

        async with (
            httpx.AsyncClient(base_url=ingest.url, timeout=10) as to_ingest,
            httpx.AsyncClient(
                base_url=metrics.url, timeout=10, headers=operator
            ) as kpis,
        ):
            assert (await _post(to_ingest, INVOICE)).status_code == 202

            async def on_time(expected_due: int, expected_paid: int) -> bool:
                response = await kpis.get(
                    "/v1/kpis", params={"as_of": "2024-04-30", "currency": "EUR"}
                )
                body = response.json()["on_time"]
                return (body["invoices_due"], body["paid_on_time"]) == (
                    expected_due,
                    expected_paid,
                )

            await eventually(lambda: on_time(1, 0))
            assert (await _post(to_ingest, PAYMENT)).status_code == 202
            await eventually(lambda: on_time(1, 1))

        await eventually(lambda: _trace_crossing_services(spans))


async def _post(client: httpx.AsyncClient, event: Mapping[str, Any]) -> httpx.Response:
    body = json.dumps(event).encode()
    headers = sign(body, KEY_ID, SECRET, datetime.now(UTC))
    headers["Content-Type"] = "application/json"
    return await client.post("/v1/events", content=body, headers=headers)


async def _trace_crossing_services(spans: SpanStore) -> bool:
    received = spans.spans
    by_id = {span.span_id: span for span in received}
    return any(
        span.service == "metrics"
        and span.parent_span_id in by_id
        and by_id[span.parent_span_id].service == "ingest"
        for span in received
    )
