"""Who may write, how much, and what a caller sees when the database is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from fastapi import FastAPI
from pydantic import SecretStr

from arbor_ingest.bootstrap import MIGRATIONS, create_app
from arbor_ingest.config import IngestSettings
from tests.conftest import Namespace
from tests.ingest.conftest import IMPORTER, WRITER, SignedClient, ingest_settings
from tests.ingest.test_api import invoice, published_ids
from tests.support import migrate, running

BODY = orjson.dumps(invoice())


async def _post(client: SignedClient, headers: dict[str, str]) -> httpx.Response:
    headers = headers | {"content-type": "application/json"}
    return await client.http.post("/v1/events", content=BODY, headers=headers)


async def test_unsigned_request_is_401_and_stores_nothing(
    client: SignedClient, app: FastAPI
) -> None:
    response = await _post(client, {})

    assert response.status_code == 401
    assert "X-Arbor-Signature" in response.json()["detail"]
    assert response.headers["WWW-Authenticate"].startswith("ArborHMAC")
    assert await published_ids(app, "billing.invoices.v1") == []


async def test_signature_over_another_body_is_401(client: SignedClient) -> None:
    headers = client.headers(orjson.dumps(invoice(amount=1)))

    response = await _post(client, headers)

    assert response.status_code == 401
    assert response.json()["detail"] == "X-Arbor-Signature does not match"


async def test_unknown_key_id_is_401(client: SignedClient) -> None:
    headers = client.headers(BODY) | {"X-Arbor-Key-Id": "someone-else"}

    response = await _post(client, headers)

    assert response.status_code == 401
    assert "unknown key id" in response.json()["detail"]


async def test_stale_and_future_timestamps_are_401(client: SignedClient) -> None:
    # A minute past the tolerance either way: one second past it, the future
    # timestamp came within it whenever the requests took a second to answer.
    now = datetime.now(UTC)
    for moment in (now - timedelta(seconds=360), now + timedelta(seconds=360)):
        response = await _post(client, client.headers(BODY, moment))

        assert response.status_code == 401
        assert "within 300 s" in response.json()["detail"]


async def test_signature_within_tolerance_is_accepted(client: SignedClient) -> None:
    moment = datetime.now(UTC) - timedelta(seconds=240)

    response = await _post(client, client.headers(BODY, moment))

    assert response.status_code == 202


async def test_rotated_secret_may_send_two_signatures(client: SignedClient) -> None:
    headers = client.headers(BODY)
    headers["X-Arbor-Signature"] = (
        "v1=" + "0" * 64 + ", " + headers["X-Arbor-Signature"]
    )

    response = await _post(client, headers)

    assert response.status_code == 202


async def test_publisher_without_the_scope_is_403(client: SignedClient) -> None:
    response = await client.post("/v1/events", invoice(), key=IMPORTER)

    assert response.status_code == 403
    assert response.json()["detail"] == (
        "publisher erp-exports lacks the scope events:write"
    )


@asynccontextmanager
async def _client(settings: IngestSettings) -> AsyncIterator[SignedClient]:
    app = create_app(settings)
    async with running(app):
        # Starlette re-raises after answering a 5xx; the answer is what is tested.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://i") as http:
            yield SignedClient(http, WRITER)


async def test_publisher_over_its_rate_gets_429_with_retry_after(
    namespace: Namespace,
) -> None:
    settings = ingest_settings(namespace, rate_per_second=0.5, rate_burst=2)
    await migrate(MIGRATIONS, settings)
    async with _client(settings) as client:
        answers = [await client.post("/v1/events", invoice()) for _ in range(3)]
        other = await client.post("/v1/events:batch", {"events": []}, key=IMPORTER)

    assert [a.status_code for a in answers] == [202, 202, 429]
    assert answers[2].headers["Retry-After"] == "2"
    assert other.status_code == 403  # another publisher's budget is its own


async def test_body_over_the_limit_is_413(namespace: Namespace) -> None:
    settings = ingest_settings(namespace, max_body_bytes=2048)
    await migrate(MIGRATIONS, settings)
    events = [invoice(f"inv-{n}") for n in range(20)]
    async with _client(settings) as client:
        response = await client.post("/v1/events:batch", {"events": events})

    assert response.status_code == 413


async def test_database_down_answers_503_never_2xx(namespace: Namespace) -> None:
    closed = "postgresql+asyncpg://arbor@127.0.0.1:9/arbor"
    settings = ingest_settings(namespace, database_url=SecretStr(closed))
    async with _client(settings) as client:
        single = await client.post("/v1/events", invoice())
        batch = await client.post("/v1/events:batch", {"events": [invoice()]})
        keyed = await client.post(
            "/v1/events", invoice(), headers={"Idempotency-Key": "k"}
        )

    assert [r.status_code for r in (single, batch, keyed)] == [503, 503, 503]
    assert single.headers["Retry-After"] == "1"


async def test_openapi_documents_every_route_with_examples(
    client: SignedClient,
) -> None:
    document: dict[str, Any] = (await client.http.get("/openapi.json")).json()

    schemas = document["components"]["schemas"]
    for name in ("EventCreate", "BatchCreate", "EventRead", "BatchRead", "ErrorRead"):
        assert schemas[name]["examples"], name
    for path in ("/v1/events", "/v1/events:batch"):
        operation = document["paths"][path]["post"]
        assert operation["requestBody"]["required"] is True
        assert {"202", "200"} & set(operation["responses"])
        assert {"401", "403", "413", "422", "429", "503"} <= set(operation["responses"])


async def test_idempotency_key_out_of_bounds_is_422_naming_the_header(
    client: SignedClient,
) -> None:
    too_long = {"Idempotency-Key": "k" * 256}
    empty = {"Idempotency-Key": ""}

    answers = [await _post(client, client.headers(BODY) | h) for h in (too_long, empty)]

    assert [a.status_code for a in answers] == [422, 422]
    errors = [a.json()["detail"][0] for a in answers]
    assert [e["loc"] for e in errors] == [["header", "Idempotency-Key"]] * 2
    assert [e["type"] for e in errors] == ["string_too_long", "string_too_short"]


async def test_signature_is_checked_before_the_idempotency_key(
    client: SignedClient, app: FastAPI
) -> None:
    response = await _post(client, {"Idempotency-Key": "k" * 256})

    assert response.status_code == 401
    assert await published_ids(app, "billing.invoices.v1") == []


async def test_single_and_batch_routes_document_the_same_idempotency_key(
    client: SignedClient,
) -> None:
    document: dict[str, Any] = (await client.http.get("/openapi.json")).json()

    single, batch = (
        document["paths"][path]["post"]["parameters"]
        for path in ("/v1/events", "/v1/events:batch")
    )

    assert single == batch
    assert [p["name"] for p in single] == ["Idempotency-Key"]
