"""Fixtures of the ingest tests: a running app, and clients that sign as publishers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from arbor_ingest.bootstrap import MIGRATIONS, create_app
from arbor_ingest.config import IngestSettings
from arbor_ingest.signing import sign
from tests.conftest import Namespace
from tests.support import migrate, running, service_settings


@dataclass(frozen=True)
class Key:
    key_id: str
    secret: str
    scopes: tuple[str, ...]


WRITER = Key("billing-engine", "w" * 16 + "0123456789abcdef", ("events:write",))
IMPORTER = Key("erp-exports", "i" * 16 + "0123456789abcdef", ("imports:write",))
ALL_SCOPES = Key(
    "ops-tools", "o" * 16 + "0123456789abcdef", ("events:write", "imports:write")
)
CLOCK = Key(
    "demo-simulator", "c" * 16 + "0123456789abcdef", ("events:write", "clock:write")
)
KEYS = (WRITER, IMPORTER, ALL_SCOPES, CLOCK)


def publishers_json(*keys: Key) -> SecretStr:
    entries = [
        {"key_id": k.key_id, "secret": k.secret, "scopes": list(k.scopes)} for k in keys
    ]
    return SecretStr(json.dumps(entries))


def ingest_settings(namespace: Namespace, **overrides: Any) -> IngestSettings:
    """Ingest settings in the test's namespace, knowing the three test publishers."""
    values: dict[str, Any] = {"publishers": publishers_json(*KEYS)} | overrides
    return service_settings(IngestSettings, namespace, "ingest", **values)


class SignedClient:
    """An HTTP client that signs every request body as one publisher."""

    def __init__(self, http: httpx.AsyncClient, key: Key) -> None:
        self.http = http
        self.key = key

    def headers(self, body: bytes, now: datetime | None = None) -> dict[str, str]:
        moment = now or datetime.now(UTC)
        return sign(body, self.key.key_id, self.key.secret, moment)

    async def post(
        self,
        path: str,
        payload: Any,
        *,
        headers: dict[str, str] | None = None,
        key: Key | None = None,
    ) -> httpx.Response:
        """POST ``payload`` (JSON-encoded unless bytes), signed."""
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        signer = SignedClient(self.http, key) if key else self
        signed = signer.headers(body) | {"content-type": "application/json"}
        return await self.http.post(
            path, content=body, headers=signed | (headers or {})
        )


@pytest.fixture
def settings(namespace: Namespace) -> IngestSettings:
    return ingest_settings(namespace)


@pytest.fixture
async def app(settings: IngestSettings) -> AsyncIterator[FastAPI]:
    """The ingest app, migrated and running in-process (relay included)."""
    await migrate(MIGRATIONS, settings)
    application = create_app(settings)
    async with running(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[SignedClient]:
    """A client signing as WRITER (scope events:write)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
        yield SignedClient(http, WRITER)
