"""Importing AR exports through the real pipeline: HTTP, ledger, outbox, Kafka."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from arbor_ingest.adapters.tables import messaging
from arbor_ingest.import_client import ImportTotals, Publisher, send_file
from arbor_shared import topics
from arbor_shared.runtime import ServiceRuntime
from tests.conftest import Namespace
from tests.ingest.conftest import IMPORTER, WRITER, SignedClient
from tests.ingest.fixtures.data import IBM_CSV
from tests.support import eventually, header, read_to_end, relayed

PATH = "/v1/imports/ar-csv"
HEADER = (
    "countryCode,customerID,PaperlessDate,invoiceNumber,InvoiceDate,DueDate,"
    "InvoiceAmount,Disputed,SettledDate,PaperlessBill,DaysToSettle,DaysLate\r\n"
)
ROW = (
    "391,0379-NEVHP,4/6/2013,0000611365,1/2/2013,2/1/2013,55.94,Yes,1/15/2013,"
    "Paper,13,0\r\n"
)


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://ingest", timeout=300
    ) as client:
        yield client


def runtime(app: FastAPI) -> ServiceRuntime:
    value: ServiceRuntime = app.state.runtime
    return value


async def import_ibm(http: httpx.AsyncClient) -> ImportTotals:
    return await send_file(
        http,
        IBM_CSV,
        publisher=Publisher(IMPORTER.key_id, IMPORTER.secret),
        params={"mapping": "ibm", "currency": "USD"},
        rows_per_chunk=500,
    )


async def outbox_rows(app: FastAPI) -> int:
    async with runtime(app).sessions() as session:
        count = await session.scalar(
            sa.select(sa.func.count()).select_from(messaging.outbox)
        )
        return int(count or 0)


async def drained(app: FastAPI) -> bool:
    return await outbox_rows(app) == 0


async def types_on(bootstrap: str, topic: str) -> Counter[str]:
    """Every record's ce_type on ``topic``, from the start to its current end."""
    records = await read_to_end(bootstrap, [topic])
    return Counter(header(record, "ce_type") for record in records)


async def test_the_ibm_export_imports_every_row_and_the_topics_match_the_file(
    app: FastAPI, http: httpx.AsyncClient, namespace: Namespace
) -> None:
    totals = await import_ibm(http)

    assert totals.rejected == []
    assert (totals.rows, totals.invoices, totals.payments) == (2466, 2466, 2466)
    assert (totals.customers, totals.disputes, totals.duplicates) == (100, 561, 0)
    await eventually(lambda: drained(app))
    bootstrap = namespace.kafka.bootstrap
    invoices = await types_on(bootstrap, f"{namespace.name}.{topics.INVOICES}")
    payments = await types_on(bootstrap, f"{namespace.name}.{topics.PAYMENTS}")
    customers = await types_on(bootstrap, f"{namespace.name}.{topics.CUSTOMERS}")
    cases = await types_on(bootstrap, f"{namespace.name}.{topics.CASES}")
    assert invoices["InvoiceIssued"] == 2466
    assert payments["PaymentReceived"] == 2466
    assert customers["CustomerCreated"] == 100
    assert (cases["DisputeOpened"], cases["DisputeResolved"]) == (561, 561)


async def test_importing_the_same_export_again_yields_only_duplicates(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    await import_ibm(http)
    await eventually(lambda: drained(app))
    published = relayed(runtime(app))

    again = await import_ibm(http)
    await eventually(lambda: drained(app))

    assert again.rejected == []
    assert (again.invoices, again.payments, again.customers, again.disputes) == (
        0,
        0,
        0,
        0,
    )
    assert again.duplicates == 2 * 2466 + 2 * 561
    assert relayed(runtime(app)) == published


async def post_csv(
    http: httpx.AsyncClient,
    text: str,
    query: str = "?mapping=ibm",
    key: object = IMPORTER,
) -> httpx.Response:
    client = SignedClient(http, key)  # type: ignore[arg-type]
    body = text.encode()
    headers = client.headers(body) | {"content-type": "text/csv"}
    return await http.post(PATH + query, content=body, headers=headers)


async def test_a_csv_body_is_imported_with_line_numbers_from_first_line(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    bad = ROW.replace("0000611365", "0000000002").replace("55.94", "5.5.5")

    response = await post_csv(
        http, HEADER + ROW + bad, "?mapping=ibm&currency=EUR&first_line=101"
    )

    assert response.status_code == 200
    assert response.json() == {
        "rows": 2,
        "invoices": 1,
        "payments": 1,
        "customers": 1,
        "disputes": 1,
        "duplicates": 0,
        "rejected": [
            {"line": 102, "reason": "InvoiceAmount '5.5.5' is not a decimal amount"}
        ],
    }


async def test_a_custom_mapping_can_travel_in_a_multipart_form(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    text = "customer,invoice,issued,due,total\r\nc-1,i-1,2024-03-01,2024-03-31,1200\r\n"
    mapping = (
        '{"customer_id": "customer", "invoice_id": "invoice", "issue_date": "issued",'
        ' "due_date": "due", "amount": "total", "currency": "JPY", "id_prefix": "erp-"}'
    )
    request = http.build_request(
        "POST",
        PATH,
        data={"mapping": mapping},
        files={"file": ("x.csv", text.encode(), "text/csv")},
    )
    body = request.read()
    request.headers.update(SignedClient(http, IMPORTER).headers(body))

    response = await http.send(request)

    assert response.status_code == 200, response.text
    assert (response.json()["invoices"], response.json()["payments"]) == (1, 0)


@pytest.mark.parametrize(
    ("text", "query", "status", "needle"),
    [
        (
            HEADER.replace("InvoiceDate,", "") + ROW,
            "?mapping=ibm",
            422,
            "missing column",
        ),
        (HEADER + ROW, "?mapping=sap", 422, "no mapping preset 'sap'"),
        (HEADER + ROW, "", 422, "name a preset"),
        (HEADER + ROW, "?mapping=ibm&currency=usd", 422, "currency"),
    ],
)
async def test_an_import_that_cannot_run_is_refused_naming_the_problem(
    app: FastAPI,
    http: httpx.AsyncClient,
    text: str,
    query: str,
    status: int,
    needle: str,
) -> None:
    response = await post_csv(http, text, query)

    assert response.status_code == status
    assert needle in response.text


async def test_imports_need_a_publisher_with_the_imports_scope(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    unsigned = await http.post(
        PATH + "?mapping=ibm",
        content=(HEADER + ROW).encode(),
        headers={"content-type": "text/csv"},
    )
    wrong_scope = await post_csv(http, HEADER + ROW, key=WRITER)

    assert unsigned.status_code == 401
    assert wrong_scope.status_code == 403
    assert await outbox_rows(app) == 0
